"""Subject names: the only place they are spelled out. Services and workflows use these helpers,
never string literals."""

PREFIX = "bfest"
STREAM = "BFEST_EVENTS"
"""JetStream stream holding every event."""
EVENTS_ALL = f"{PREFIX}.evt.>"
DLQ_ALL = f"{PREFIX}.dlq.>"

SERVICES = ("registration", "verification", "scoring", "awards")
CYCLE = "cycle"
"""Events published by the cycle workflow itself (lifecycle)."""


def command(service: str, name: str) -> str:
    """``bfest.<service>.cmd.<name>``: NATS request/reply, served by the queue group ``<service>``."""
    return f"{PREFIX}.{service}.cmd.{name}"


def commands_of(service: str) -> str:
    return f"{PREFIX}.{service}.cmd.*"


def event(service: str, name: str, version: int) -> str:
    """``bfest.evt.<service>.<event>.v<N>``: JetStream, stream ``BFEST_EVENTS``."""
    return f"{PREFIX}.evt.{service}.{name}.v{version}"


def events_of(service: str) -> str:
    return f"{PREFIX}.evt.{service}.>"


def dlq(service: str) -> str:
    """``bfest.dlq.<service>``: poison events a service could not process, with the reason."""
    return f"{PREFIX}.dlq.{service}"


def queue_group(service: str) -> str:
    return service
