"""The whole catalogue: importing this module registers every command and event."""

from contracts import awards, cycle, registration, scoring, verification
from contracts.base import COMMANDS, EVENTS, CommandSpec, EventSpec

__all__ = ["COMMANDS", "EVENTS", "CommandSpec", "EventSpec", "awards", "cycle", "registration", "scoring", "verification"]


def commands_of(service: str) -> list[CommandSpec]:
    return [spec for spec in COMMANDS.values() if spec.service == service]


def events_of(service: str) -> list[EventSpec]:
    return [spec for spec in EVENTS.values() if spec.service == service]


def event_model(subject: str) -> type | None:
    spec = EVENTS.get(subject)
    return spec.model if spec else None
