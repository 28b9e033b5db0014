"""What the operator sees of the processes' health and traces: the ``warning:`` lines of
``bfest cycle status`` for a service that is not ready, and ``bfest trace --proposal``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats

from bfest import security
from contracts import subjects


async def readiness_warnings(nats_url: str, timeout: float = 2.0) -> list[str]:
    """One line per service that is not ready (with its reasons) or does not answer its health
    command; nothing when NATS itself is out of reach (the status panel does not depend on it)."""
    try:
        nc = await asyncio.wait_for(
            security.connect(nats_url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False), timeout
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


# ---------------------------------------------------------------------- bfest trace

DEFAULT_TRACE_QUERY_URL = "http://127.0.0.1:16686"


def _get_json(url: str, timeout: float) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the operator's own URL
        return json.loads(response.read())


def proposal_path(proposal_id: str, query_url: str, lookback: str = "8760h", limit: int = 500, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every span of every trace that touches ``proposal_id`` (span attribute ``bfest.proposal_id``),
    in time order, from a trace backend's Jaeger query API (Jaeger itself, or Grafana Tempo's
    Jaeger-compatible query). Each row: ``at`` (UTC datetime), ``service``, ``span``, ``subject``,
    ``outcome``, ``trace_id``."""
    import datetime as dt
    from urllib.parse import urlencode

    base = query_url.rstrip("/")
    services = [s for s in (_get_json(f"{base}/api/services", timeout).get("data") or []) if s.startswith("bfest")]
    tags = json.dumps({"bfest.proposal_id": proposal_id})
    traces: dict[str, dict[str, Any]] = {}
    for service in services:
        query = urlencode({"service": service, "tags": tags, "lookback": lookback, "limit": limit})
        for t in _get_json(f"{base}/api/traces?{query}", timeout).get("data") or []:
            traces[t["traceID"]] = t
    rows = []
    for t in traces.values():
        processes = t.get("processes") or {}
        for span in t.get("spans") or []:
            tags_ = {tag["key"]: tag.get("value") for tag in span.get("tags") or []}
            rows.append(
                {
                    "at": dt.datetime.fromtimestamp(span["startTime"] / 1e6, dt.UTC),
                    "service": tags_.get("bfest.service") or (processes.get(span.get("processID")) or {}).get("serviceName", ""),
                    "span": span.get("operationName", ""),
                    "subject": tags_.get("messaging.destination.name", ""),
                    "outcome": tags_.get("bfest.outcome", ""),
                    "proposal_id": tags_.get("bfest.proposal_id", ""),
                    "duration_ms": span.get("duration", 0) / 1000,
                    "trace_id": t["traceID"],
                }
            )
    rows.sort(key=lambda r: r["at"])
    return rows
