"""Tracing (OpenTelemetry): one trace from a command to the events it caused and on to the
consumers, the bridge and the workflow.

W3C trace context (``traceparent``) travels in command headers and event headers; the outbox
keeps the command span's with each row and the relay publishes the event with it as it is, so the
event's consumers continue the trace of the command that caused it (the relay makes no span: an
SDK span per event cost more than the rest of tracing a command; the outbox metrics tell a slow
relay). Spans carry the cycle year, the subject, the proposal id where there is one, and the
outcome (``ok`` or the error code).

Tracing is on in a process once a tracer provider is set: by :func:`configure_from_env` when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set — the standard
OpenTelemetry variables then apply (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS``, …) — or
by :func:`use` (tests, benchmarks). Otherwise no span is made and no header added: every helper
here returns at its first line.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "bfest"
TRACEPARENT = "traceparent"

# Span attribute names (README: Observability).
CYCLE_YEAR = "bfest.cycle_year"
PROPOSAL_ID = "bfest.proposal_id"
OUTCOME = "bfest.outcome"
SERVICE = "bfest.service"
REQUEST_ID = "bfest.request_id"
SUBJECT = "messaging.destination.name"

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_faststream = False


def use(provider: TracerProvider | None, faststream: bool = False) -> None:
    """Turn tracing on with ``provider`` (or off with ``None``) for what starts from now on in this
    process (a broker built, a worker started).

    ``faststream`` (``BFEST_TRACE_FASTSTREAM=1``) adds FastStream's ``NatsTelemetryMiddleware`` to
    the command broker: a ``<subject> process`` span around each command's intake, which only
    parses it and hands it over. Without it the runtime reads the trace context from the
    command's headers itself and the ``command <name>`` span is the service's span. Off by default:
    it is a second SDK span per command (measured by ``make bench``: about 0.7–0.85 of the
    throughput with tracing off, against about 0.9 without it)."""
    global _provider, _tracer, _faststream
    _provider = provider
    _tracer = provider.get_tracer(TRACER_NAME) if provider is not None else None
    _faststream = faststream


def enabled() -> bool:
    return _tracer is not None


def provider() -> TracerProvider | None:
    return _provider


def configure_from_env(service_name: str) -> bool:
    """Export spans by OTLP (HTTP/protobuf) when the standard variables name a collector; returns
    whether tracing is on. Idempotent."""
    if _provider is not None:
        return True
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or f"bfest-{service_name}"})
    sdk = SdkTracerProvider(resource=resource)
    sdk.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(sdk)
    atexit.register(sdk.shutdown)
    use(sdk, faststream=os.environ.get("BFEST_TRACE_FASTSTREAM", "0") not in ("", "0", "false"))
    return True


# ---------------------------------------------------------------------- context


def traceparent() -> str | None:
    """The current span's ``traceparent`` (what an outbox row keeps), or ``None``."""
    if _tracer is None:
        return None
    return span_traceparent(trace.get_current_span())


def headers(base: dict[str, str] | None = None) -> dict[str, str] | None:
    """``base`` with the current trace context added (a command's request headers); ``base`` as
    it is when tracing is off or no span is current."""
    if _tracer is None:
        return base
    carrier = dict(base or {})
    _propagator.inject(carrier)
    return carrier or base


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context | None:
    """The remote parent named by a message's headers (``None`` when it names none)."""
    if _tracer is None or not carrier:
        return None
    value = carrier.get(TRACEPARENT)
    if not value:
        return None
    if "tracestate" in carrier:  # a vendor's state rides along: the propagator keeps it
        return _propagator.extract(carrier)
    return _parse(value) or _propagator.extract(carrier)


def _parse(value: str) -> otel_context.Context | None:
    """The common case read directly (version 00, as we write it): the propagator's general
    parser costs more than the span it parents. Anything else goes to the propagator."""
    if len(value) != 55 or not value.startswith("00-"):
        return None
    try:
        trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:55], 16)
    except ValueError:
        return None
    if not trace_id or not span_id or value[35] != "-" or value[52] != "-":
        return None
    parent = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(flags))
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def current() -> otel_context.Context | None:
    return otel_context.get_current() if _tracer is not None else None


def received(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The context a received command continues: FastStream's span when its middleware made one,
    else the trace its headers name."""
    if _tracer is None:
        return None
    return otel_context.get_current() if _faststream else extract(headers)


def span_traceparent(span: Span | None) -> str | None:
    """A span's W3C ``traceparent`` value (version 00), written directly: it is made for every
    event and command, and the propagator's carrier round trip costs more than the span."""
    if span is None:
        return None
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


# ---------------------------------------------------------------------- spans


def attributes_of(message: Any) -> dict[str, Any]:
    """The domain attributes a command or event carries: its cycle year and proposal id."""
    out: dict[str, Any] = {}
    year = getattr(message, "cycle_year", None)
    if isinstance(year, int):
        out[CYCLE_YEAR] = year
    proposal = getattr(message, "proposal_id", None)
    if proposal is None:  # an event carrying the proposal's snapshot
        proposal = getattr(getattr(message, "proposal", None), "id", None)
    if isinstance(proposal, str):
        out[PROPOSAL_ID] = proposal
    return out


def start(
    name: str,
    parent: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Span | None:
    """A span not made current (ended with :func:`finish`); ``None`` when tracing is off."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


@contextlib.contextmanager
def span(
    name: str,
    parent: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> Iterator[Span | None]:
    """A current span for the block; ``None`` (and nothing done) when tracing is off."""
    if _tracer is None:
        yield None
        return
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes, record_exception=True, set_status_on_exception=True
    ) as s:
        yield s


def mark(span: Span | None, outcome: str = "ok", message: str | None = None) -> None:
    if span is None:
        return
    span.set_attribute(OUTCOME, outcome)
    if outcome != "ok":
        span.set_status(Status(StatusCode.ERROR, f"{outcome}: {message}" if message else outcome))


def annotate(attributes: dict[str, Any]) -> None:
    """Add attributes to the current span (tracing on)."""
    if _tracer is not None and attributes:
        trace.get_current_span().set_attributes(attributes)


def temporal_interceptors() -> list[Any]:
    """Temporal's tracing interceptor when tracing is on (client and worker)."""
    if _tracer is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_tracer)]


def broker_middlewares() -> list[Any]:
    """FastStream's OpenTelemetry middleware when tracing is on with it (see :func:`use`)."""
    if _provider is None or not _faststream:
        return []
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware

    return [NatsTelemetryMiddleware(tracer_provider=_provider)]


__all__ = [
    "SpanKind",
    "attributes_of",
    "configure_from_env",
    "enabled",
    "extract",
    "headers",
    "mark",
    "span",
    "start",
    "traceparent",
    "use",
]
