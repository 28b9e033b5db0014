"""How the portal acts: each person's act is a NATS command sent through the broker the FastAPI
app shares with FastStream, with the acting person in the ``Bfest-Actor`` header (from the
session), and its reply read as the envelope."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.nats import NatsBroker
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from contracts.base import ACTOR_HEADER, Actor, Command, Reply
from services.common.messaging import dumps


class Gateway:
    def __init__(self, broker: NatsBroker, timeout: float = 10.0) -> None:
        self.broker = broker
        self.timeout = timeout

    async def send(self, command: Command, actor: Actor | None = None) -> Reply:
        """Send ``command`` for ``actor`` (the ``Bfest-Actor`` header, which only the portal's and
        the operator's identities may send); a service that does not answer is an error reply
        (``unavailable``), never an exception the page has to catch."""
        headers = {ACTOR_HEADER: actor.model_dump_json()} if actor else None
        try:
            msg = await self.broker.request(dumps(command), command.subject(), headers=headers, timeout=self.timeout)
        except (TimeoutError, NatsTimeout, NoRespondersError) as exc:
            return Reply.failure("unavailable", f"{command.subject()} did not answer ({exc.__class__.__name__})")
        return Reply.model_validate_json(msg.body)


def request_id(prefix: str) -> str:
    """A fresh idempotency key for one submitted form (a retried form is a new act)."""
    return f"portal-{prefix}-{uuid.uuid4().hex}"


def data(reply: Reply) -> Any:
    return reply.data if reply.ok else None
