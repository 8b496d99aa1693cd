"""Prometheus metrics: the one place city-os defines them.

Layer: observability/. One ``Metrics`` object per process (created by ``create_app``, or by the
``city-os relay`` command) owns its own ``CollectorRegistry``, so tests can build many apps
without name clashes and nothing lives at module level. Hot paths (every HTTP request, every
entity written) touch cached label children only: one dict lookup, one histogram observe and
one counter increment. Gauges that need the database (outbox backlog, age of the oldest
unpublished event) are computed on scrape by ``render``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Request latencies of a broker: most answers in a few ms, slow queries up to seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PUBLISH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From a change's write to its notification's delivery: tens of ms normally, up to the retry
# horizon when a receiver was down.
DELIVERY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
)  # fmt: skip


class _Child:
    """The two cached children one HTTP request touches."""

    __slots__ = ("count", "latency")

    def __init__(self, count: Any, latency: Any) -> None:
        self.count = count
        self.latency = latency


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "cityos_http_requests_total",
            "HTTP requests by route (canonical path), method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "cityos_http_request_duration_seconds",
            "HTTP request latency by route (canonical path) and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.entities_written = Counter(
            "cityos_entities_written_total",
            "Entity changes committed, by operation (event kind) and tenant",
            ["operation", "tenant"],
            registry=r,
        )
        self.events_published = Counter(
            "cityos_events_published_total",
            "Outbox events published to Kafka (acknowledged by the broker)",
            registry=r,
        )
        self.relay_lost_log = Counter(
            "cityos_relay_lost_log_total",
            "Times the relay found Kafka without events it had acknowledged (topic lost, "
            "offsets gone back) and republished the outbox's retained window",
            registry=r,
        )
        self.events_requeued = Counter(
            "cityos_events_requeued_total",
            "Published outbox events queued again because Kafka lost them",
            registry=r,
        )
        self.events_oversized = Counter(
            "cityos_events_oversized_total",
            "Events over the Kafka message limit, published as claim checks without their data",
            registry=r,
        )
        self.publish_errors = Counter(
            "cityos_relay_errors_total",
            "Outbox relay failures by stage (kafka = connect/produce, database = outbox access)",
            ["stage"],
            registry=r,
        )
        self.publish_batch = Histogram(
            "cityos_relay_batch_duration_seconds",
            "Time to publish one outbox batch and mark it published",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.relay_active = Gauge(
            "cityos_relay_active",
            "1 while this process holds the relay lock (the active relay), 0 on standby",
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "cityos_outbox_backlog_events",
            "Outbox events not yet published (computed on scrape)",
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "cityos_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox event; 0 when the backlog is empty",
            registry=r,
        )
        self.db_pool = Gauge(
            "cityos_db_pool_connections",
            "PostgreSQL pool connections by state (in_use, idle, max)",
            ["state"],
            registry=r,
        )
        self.notifications = Counter(
            "cityos_notifications_total",
            "Notification attempts by channel (http, mqtt, …) and outcome: sent, retried "
            "(a transient failure, tried again later), failed (for good) or dropped (its "
            "subscription was deleted, paused or expired, or the endpoint was cooling down)",
            ["channel", "outcome"],
            registry=r,
        )
        self.notification_latency = Histogram(
            "cityos_notification_latency_seconds",
            "From the write of a change to the delivery of its notification, by channel",
            ["channel"],
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.notifier_events = Counter(
            "cityos_notifier_events_total",
            "Change events (entity and subscription changes) the notifier handled, by tenant",
            ["tenant"],
            registry=r,
        )
        self.notifications_stored = Counter(
            "cityos_notifications_stored_total",
            "Notifications matched and stored for delivery (a re-consumed event adds none)",
            registry=r,
        )
        self.notifier_queue = Gauge(
            "cityos_notifier_queue_depth",
            "Notifications waiting in memory per endpoint (computed on scrape)",
            ["endpoint"],
            registry=r,
        )
        self.notifier_pending = Gauge(
            "cityos_notifications_pending",
            "Notifications not yet delivered, in PostgreSQL, all replicas (computed on scrape)",
            registry=r,
        )
        self.subscriptions = Gauge(
            "cityos_subscriptions",
            "Subscriptions in this notifier's index by status: active, failed (active, but "
            "their last notification failed), paused, expired, unusable (their @context cannot "
            "be resolved now)",
            ["status"],
            registry=r,
        )
        self.stream_connections = Gauge(
            "cityos_stream_connections",
            "Open live-stream (Server-Sent Events) connections of this API process",
            registry=r,
        )
        self.context_cache_bytes = Gauge(
            "cityos_context_cache_bytes",
            "Bytes the remote @context cache holds (documents' JSON, term maps estimated), "
            "bounded by CITYOS_CONTEXT_CACHE_BYTES",
            registry=r,
        )
        self.context_cache_entries = Gauge(
            "cityos_context_cache_entries",
            "Entries of the remote @context cache by kind (document, term_map)",
            ["kind"],
            registry=r,
        )
        self.source_latency = Histogram(
            "cityos_source_request_duration_seconds",
            "Requests forwarded to context sources (distributed operations), by source "
            "(host:port of the registration's endpoint) and operation",
            ["source", "operation"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.source_failures = Counter(
            "cityos_source_failures_total",
            "Forwarded requests without a usable answer, by source and kind: timeout, "
            "error (connection refused, reset, refused by the network policy) or status "
            "(an HTTP error status)",
            ["source", "kind"],
            registry=r,
        )
        self._http: dict[tuple[str, str, int], _Child] = {}
        self._written: dict[tuple[str, str], Any] = {}
        # Refreshers run before each scrape (outbox backlog, pool usage); set by the app.
        self.collectors: list[Callable[[Metrics], Awaitable[None]]] = []

    # ------------------------------------------------------------- hot paths

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = _Child(
                self.http_requests.labels(route, method, str(status)),
                self.http_latency.labels(route, method),
            )
        child.count.inc()
        child.latency.observe(seconds)

    def entity_written(self, operation: str, tenant: str, count: int = 1) -> None:
        key = (operation, tenant)
        child = self._written.get(key)
        if child is None:
            child = self._written[key] = self.entities_written.labels(operation, tenant)
        child.inc(count)

    def notification_sent(self, channel: str, event_time: float | None) -> None:
        self.notifications.labels(channel, "sent").inc()
        if event_time is not None:
            self.notification_latency.labels(channel).observe(max(0.0, time.time() - event_time))

    def notification_outcome(self, channel: str, outcome: str) -> None:
        self.notifications.labels(channel, outcome).inc()

    # ---------------------------------------------------------------- scrape

    async def render(self) -> bytes:
        for collect in self.collectors:
            await collect(self)
        return generate_latest(self.registry)


def pool_collector(pool: Any) -> Callable[[Metrics], Awaitable[None]]:
    """Pool usage from asyncpg's own counters (no query)."""

    async def collect(metrics: Metrics) -> None:
        size, idle = pool.get_size(), pool.get_idle_size()
        metrics.db_pool.labels("in_use").set(size - idle)
        metrics.db_pool.labels("idle").set(idle)
        metrics.db_pool.labels("max").set(pool.get_max_size())

    return collect


def context_cache_collector(stats: Callable[[], Any]) -> Callable[[Metrics], Awaitable[None]]:
    """The @context cache's size from the loader's own counters (``ContextLoader.stats``)."""

    async def collect(metrics: Metrics) -> None:
        current = stats()
        metrics.context_cache_bytes.set(current.bytes)
        metrics.context_cache_entries.labels("document").set(current.documents)
        metrics.context_cache_entries.labels("term_map").set(current.term_maps)

    return collect


def now() -> float:
    """The clock latency is measured with."""
    return time.perf_counter()


def written_observer(metrics: Metrics) -> Callable[[list[Any], set[str]], None]:
    """``EntityRepository.on_written`` hook: count committed writes by event kind and tenant."""

    def observe(writes: list[Any], done: set[str]) -> None:
        for w in writes:
            if w.record.id in done:
                event = w.event
                metrics.entity_written(event["event_type"].rpartition(".")[2], event["tenant"])

    return observe
