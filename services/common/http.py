"""The process's HTTP port (``BFEST_<SERVICE>_HTTP_PORT`` or ``BFEST_HTTP_PORT``; 0 picks a free
one): ``/livez`` (the event loop answers), ``/readyz`` (the :class:`~services.common.health.Probe`:
200 with ``{"ready": true}``, or 503 with the reasons) and ``/metrics`` (Prometheus text).

A few dozen lines on :func:`asyncio.start_server` rather than a web framework: three GET routes,
one short response each, on the service's own event loop (so readiness sees the real state).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST

from services.common import metrics
from services.common.health import Probe
from services.common.logging import get_logger

Extra = Callable[[], Awaitable[bytes]]


class HealthServer:
    def __init__(self, probe: Probe, host: str = "127.0.0.1", port: int = 0, extra_metrics: Extra | None = None) -> None:
        self.probe = probe
        self.host = host
        self.port = port
        self.extra_metrics = extra_metrics
        self._server: asyncio.Server | None = None
        self.log = get_logger("http", process=probe.name)

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.log.info("http.serving", address=self.address)
        return self.address

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)).strip():
                pass  # headers: none matter here
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            status, ctype, body = await self._route(method, path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # noqa: BLE001 - one bad request never stops the port
            self.log.exception("http.failed")
        finally:
            writer.close()

    async def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/livez":
            return "200 OK", "application/json", b'{"live":true}\n'
        if path == "/readyz":
            state = await self.probe.readiness()
            body = (json.dumps({"process": self.probe.name, **state.as_json()}) + "\n").encode()
            return ("200 OK" if state.ready else "503 Service Unavailable"), "application/json", body
        if path == "/metrics":
            await self.probe.readiness()  # refreshes the gauges
            body = metrics.exposition()
            if self.extra_metrics is not None:
                try:
                    body += await self.extra_metrics()
                except Exception as exc:  # noqa: BLE001 - our metrics still go out
                    self.log.warning("http.extra_metrics_failed", error=str(exc))
            return "200 OK", CONTENT_TYPE_LATEST, body
        return "404 Not Found", "text/plain", b"/livez, /readyz or /metrics\n"


async def fetch_text(host: str, port: int, path: str = "/metrics", timeout: float = 3.0) -> bytes:
    """GET a small text resource over plain HTTP/1.0 (temporalio's own Prometheus endpoint)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    _, _, body = data.partition(b"\r\n\r\n")
    return body
