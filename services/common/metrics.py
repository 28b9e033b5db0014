"""Prometheus metrics (``prometheus-client``, its default registry), served at ``/metrics`` on a
process's HTTP port (:mod:`services.common.http`). Every metric is labelled with the service (or
``worker``), so several services in one process (the tests) stay apart. The gauges are refreshed
by the readiness check (:mod:`services.common.health`) that runs on each scrape."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest

COMMAND_SECONDS = Histogram(
    "bfest_command_duration_seconds",
    "Time from a command's intake to its reply, by subject and outcome (ok or the error code)",
    ["service", "subject", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EVENTS_PUBLISHED = Counter(
    "bfest_events_published", "Events the outbox relay published to JetStream (duplicates not counted)", ["service"]
)
EVENTS_CONSUMED = Counter(
    "bfest_events_consumed", "Events a service's consumers processed, by subject and outcome", ["service", "subject", "outcome"]
)
OUTBOX_DEPTH = Gauge("bfest_outbox_depth", "Outbox rows committed and not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "bfest_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row (0 when none)", ["service"]
)
CONSUMER_PENDING = Gauge(
    "bfest_consumer_pending", "Events in the stream a durable consumer has not yet been delivered", ["service", "consumer"]
)
CONSUMER_ACK_PENDING = Gauge(
    "bfest_consumer_ack_pending", "Events delivered to a durable consumer and not yet acknowledged", ["service", "consumer"]
)
CONSUMER_REDELIVERED = Gauge(
    "bfest_consumer_redelivered", "Events a durable consumer has had delivered more than once", ["service", "consumer"]
)
DLQ_DEPTH = Gauge("bfest_dlq_depth", "Dead-lettered events in bfest.dlq.<service>", ["service"])
READY = Gauge("bfest_ready", "1 when the process is ready (see /readyz for the reasons when not)", ["service"])


def observe_command(service: str, subject: str, outcome: str, seconds: float) -> None:
    COMMAND_SECONDS.labels(service, subject, outcome).observe(seconds)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
