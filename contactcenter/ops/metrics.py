"""Prometheus metrics of the contact center, counted from committed facts.

Most counters are fed from the event rows of committed transactions (``Database.on_commit``):
an intake or a routing decision that rolled back never happened, so it is never counted, and
a job retried after a crash counts its effect once. Counters that have no event (job failures,
HTTP requests) are incremented where they happen through the tiny functions below.

Several processes: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by every process
of one host (web, workers, SMTP) before they start; ``/metrics`` then sums the counters of all of
them (prometheus-client's multiprocess mode). Without it, each process reports its own.
Queue depths are read from Redis when scraped, so they are correct whichever process answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

QUEUES = ("inbound", "outbound", "search", "sla", "default")

EVENTS = Counter("contactcenter_events_total", "Domain events committed, by type.", ["type"])
INTAKE = Counter("contactcenter_intake_total",
                 "Inbound contacts stored (messages from customers), by channel.", ["channel"])
TICKETS = Counter("contactcenter_tickets_created_total", "Tickets created, by channel.",
                  ["channel"])
ROUTING = Counter("contactcenter_routing_decisions_total",
                  "Routing decisions committed (queued, offered, assigned, transferred...).",
                  ["decision"])
SLA_BREACHES = Counter("contactcenter_sla_breaches_total", "SLA breaches reported.")
JOB_FAILURES = Counter("contactcenter_job_failures_total", "Jobs that raised, by job name.",
                       ["job"])
OUTBOUND = Counter("contactcenter_outbound_delivery_total",
                   "Outbound delivery state changes, by state.", ["state"])
REQUESTS = Counter("contactcenter_http_requests_total", "HTTP requests answered.",
                   ["method", "status"])
LATENCY = Histogram("contactcenter_http_request_seconds", "HTTP request duration.",
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
SOCKET_CLIENTS = Gauge("contactcenter_socket_clients",
                       "Socket.IO clients connected to web processes (sum over processes).",
                       multiprocess_mode="livesum")

_ROUTING_TYPES = {"item.queued": "queued", "item.assigned": "assigned",
                  "item.transferred": "transferred", "item.completed": "completed",
                  "item.abandoned": "abandoned", "offer.made": "offered",
                  "offer.accepted": "accepted", "offer.declined": "declined",
                  "offer.expired": "expired", "ticket.assigned": "ticket_assigned"}


def multiprocess_dir() -> str | None:
    """Return the shared folder of multiprocess mode, or None when each process reports alone."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _field(row: Any, name: str) -> Any:
    if isinstance(row, dict):
        return row.get(name)
    return getattr(row, name, None)


def count_events(rows: Iterable[Any]) -> None:
    """Count the event rows of one committed transaction (a ``Database.on_commit`` callback).

    Never raises: metrics must not break a commit's other after-commit work.
    """
    try:
        for row in rows:
            type_ = str(_field(row, "type") or "")
            payload = _field(row, "payload") or {}
            EVENTS.labels(type_).inc()
            if type_ == "message.created" and payload.get("direction") == "inbound":
                INTAKE.labels(str(payload.get("channel") or "unknown")[:32]).inc()
            elif type_ == "ticket.created":
                TICKETS.labels(str(payload.get("channel") or "unknown")[:32]).inc()
            elif type_ == "sla.breached":
                SLA_BREACHES.inc()
            elif type_ == "message.delivery_changed":
                OUTBOUND.labels(str(payload.get("state") or payload.get("delivery_state")
                                    or "unknown")[:32]).inc()
            decision = _ROUTING_TYPES.get(type_)
            if decision:
                ROUTING.labels(decision).inc()
    except Exception:  # pragma: no cover - defensive
        log.exception("metrics: counting committed events failed")


def job_failed(name: str) -> None:
    """Count a job that raised (called by both job backends)."""
    try:
        JOB_FAILURES.labels(name[:64]).inc()
    except Exception:  # pragma: no cover - defensive
        log.exception("metrics: counting a job failure failed")


def request_done(method: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request."""
    REQUESTS.labels(method, str(status)).inc()
    LATENCY.observe(seconds)


def set_socket_clients(count: int) -> None:
    """Publish this process's number of connected Socket.IO clients."""
    SOCKET_CLIENTS.set(count)


class QueueDepthCollector:
    """Report the RQ queue lengths and failed-job registries, read from Redis at scrape time."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("contactcenter_queue_depth", "Jobs waiting in each RQ queue.",
                                  labels=["queue"])
        failed = GaugeMetricFamily("contactcenter_queue_failed",
                                   "Jobs in each RQ queue's failed registry.", labels=["queue"])
        up = GaugeMetricFamily("contactcenter_redis_up", "1 if Redis answered the scrape.")
        try:
            from redis import Redis
            from rq import Queue

            redis = Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=1)
            try:
                for name in QUEUES:
                    queue = Queue(name, connection=redis)
                    depth.add_metric([name], queue.count)
                    failed.add_metric([name], queue.failed_job_registry.count)
            finally:
                redis.close()
            up.add_metric([], 1)
        except Exception as exc:  # Redis away: say so rather than fail the scrape
            log.warning("metrics: Redis not readable: %s", exc)
            up.add_metric([], 0)
        yield depth
        yield failed
        yield up


def render(redis_url: str = "") -> bytes:
    """Render every metric in the Prometheus text format (summed over processes if shared)."""
    registry = CollectorRegistry()
    shared = multiprocess_dir()
    if shared:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=shared)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY  # type: ignore[assignment]
        return generate_latest(registry) + (
            generate_latest(_redis_registry(redis_url)) if redis_url else b"")
    if redis_url:
        registry.register(QueueDepthCollector(redis_url))  # type: ignore[arg-type]
    return generate_latest(registry)


def _redis_registry(redis_url: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(QueueDepthCollector(redis_url))  # type: ignore[arg-type]
    return registry


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (gunicorn's ``child_exit`` hook in multiprocess mode)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
