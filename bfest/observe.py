"""What the operator sees of the processes' health and traces: the ``warning:`` lines of
``bfest cycle status`` for a service that is not ready, and ``bfest trace --proposal``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats

from contracts import subjects


async def readiness_warnings(nats_url: str, timeout: float = 2.0) -> list[str]:
    """One line per service that is not ready (with its reasons) or does not answer its health
    command; nothing when NATS itself is out of reach (the status panel does not depend on it)."""
    try:
        nc = await asyncio.wait_for(
            nats.connect(nats_url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False), timeout
        )
    except Exception:  # noqa: BLE001
        return []

    async def ask(service: str) -> str | None:
        try:
            msg = await nc.request(subjects.command(service, "health"), b"{}", timeout=timeout)
        except nats.errors.NoRespondersError:
            return f"{service} is not running (no service answers {subjects.command(service, 'health')})"
        except Exception:  # noqa: BLE001 - a timeout: it is there but too busy or stuck to answer
            return f"{service} did not answer its health command within {timeout:g}s"
        reply = json.loads(msg.data)
        data: dict[str, Any] = reply.get("data") or {}
        if reply.get("ok") and data.get("ready", True):
            return None
        reasons = data.get("reasons") or [((reply.get("error") or {}).get("message") or "not ready")]
        return f"{service} is not ready: " + "; ".join(reasons)

    try:
        return [w for w in await asyncio.gather(*(ask(s) for s in subjects.SERVICES)) if w]
    finally:
        await nc.close()
