"""Replies: every answer is the envelope. What goes wrong before a command reaches its handler
(unreadable JSON, a body that is not an object, a schema violation) is answered here, in one
place, as is an error a handler raises."""

from __future__ import annotations

import json
from typing import Any

from faststream import BaseMiddleware
from pydantic import ValidationError

from contracts.base import ErrorCode, Reply
from services.common.errors import DomainError
from services.common.logging import get_logger


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err.get("loc", ())]
        out.append(
            {"field": ".".join(loc) or "(body)", "problem": err.get("msg", ""), "type": err.get("type")}
        )
    return out


def refusal(exc: DomainError) -> Reply:
    return Reply.failure(exc.code, exc.message, exc.details)


def error_reply(exc: BaseException, subject: str, log: Any, inside_handler: bool = False) -> Reply:
    if isinstance(exc, ValidationError) and not inside_handler:
        details = validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
        return Reply.failure(ErrorCode.VALIDATION_ERROR, f"invalid command for {subject}: {summary}", details)
    if isinstance(exc, DomainError):
        return refusal(exc)
    log.exception("command.internal_error", subject=subject)
    return Reply.failure(
        ErrorCode.INTERNAL_ERROR, f"internal error while handling {subject}; it has been logged"
    )


async def respond(raw: Any, reply: Reply) -> None:
    """Answer a request (a message published without a reply subject gets none)."""
    if raw.reply:
        await raw.respond(reply.model_dump_json().encode())


class EnvelopeMiddleware(BaseMiddleware):
    """Answers with the envelope whatever goes wrong before the intake has the command: malformed
    JSON → ``invalid_json``; anything but a JSON object or a schema violation →
    ``validation_error`` with each field's problem (out of the box FastStream sends no reply).
    A batch of events (the event consumers share the broker) passes through untouched."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        raw = msg.raw_message
        if isinstance(raw, list):
            return await call_next(msg)
        subject = getattr(raw, "subject", "?")
        body = msg.body
        # The body is decoded once, by FastStream; it is looked at again only when something fails.
        if body.lstrip()[:1] != b"{":
            await respond(raw, _not_an_object(subject, body))
            return None
        try:
            return await call_next(msg)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an envelope
            await respond(raw, _failure(subject, body, exc))
            return None


def _failure(subject: str, body: bytes, exc: Exception) -> Reply:
    try:
        json.loads(body)
    except _UNREADABLE as bad:
        return _invalid_json(subject, bad)
    if isinstance(exc, ValidationError) and exc.errors()[0]["type"] == "json_invalid":
        # Python reads it, strict JSON does not (NaN, Infinity).
        return _invalid_json(subject, ValueError(exc.errors()[0]["msg"]))
    return error_reply(exc, subject, get_logger("command", subject=subject))


# A body nested too deeply for the parser (RecursionError) is refused as unreadable JSON too.
_UNREADABLE = (ValueError, UnicodeDecodeError, RecursionError)


def _invalid_json(subject: str, exc: Exception) -> Reply:
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    return Reply.failure(ErrorCode.INVALID_JSON, f"the body of {subject} is not valid JSON: {reason}")


def _not_an_object(subject: str, body: bytes) -> Reply:
    try:
        json.loads(body)
    except _UNREADABLE as exc:
        if body.strip():
            return _invalid_json(subject, exc)
    return Reply.failure(ErrorCode.VALIDATION_ERROR, f"the body of {subject} must be a JSON object")


async def as_received(msg: Any) -> bytes:
    """FastStream's decoder for commands: the body as received (the intake parses it)."""
    return bytes(msg.body)
