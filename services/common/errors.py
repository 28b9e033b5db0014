"""Domain errors: raised by a service's domain or handlers, turned into an ``ok: false`` reply
(or a DLQ entry for an event) by the runtime, in one place."""

from __future__ import annotations

from typing import Any

from contracts.base import ErrorCode


class DomainError(Exception):
    """A rule said no. ``code`` is machine-readable; ``message`` is one clear sentence."""

    code: str = ErrorCode.CONFLICT.value
    retryable: bool = False

    def __init__(self, code: str | None = None, message: str = "", details: Any = None) -> None:
        if code is not None:
            self.code = code
        self.message = message or self.code.replace("_", " ")
        self.details = details
        super().__init__(self.message)


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND.value


class InvalidTransition(DomainError):
    code = ErrorCode.INVALID_TRANSITION.value


class NotReady(DomainError):
    """A read model is behind what the command expects: the caller should retry."""

    code = ErrorCode.NOT_READY.value
    retryable = True
