"""Metrics are defined once, named by Prometheus conventions, and cheap on the hot path."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from city_os.observability.metrics import Metrics, written_observer


async def families(metrics: Metrics) -> dict[str, object]:
    text = (await metrics.render()).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_names_follow_prometheus_conventions() -> None:
    names = set(await families(Metrics()))
    assert {
        "cityos_http_requests",
        "cityos_http_request_duration_seconds",
        "cityos_entities_written",
        "cityos_events_published",
        "cityos_relay_errors",
        "cityos_outbox_backlog_events",
        "cityos_outbox_oldest_unpublished_age_seconds",
        "cityos_db_pool_connections",
    } <= names
    text = (await Metrics().render()).decode()
    assert "# TYPE cityos_http_requests_total counter" in text


async def test_request_children_are_cached() -> None:
    metrics = Metrics()
    metrics.observe_request("/ngsi-ld/v1/entities/{entityId}", "GET", 200, 0.002)
    metrics.observe_request("/ngsi-ld/v1/entities/{entityId}", "GET", 200, 0.004)
    assert len(metrics._http) == 1
    text = (await metrics.render()).decode()
    assert (
        'cityos_http_requests_total{method="GET",route="/ngsi-ld/v1/entities/{entityId}",'
        'status="200"} 2.0' in text
    )
    assert "cityos_http_request_duration_seconds_count" in text


async def test_written_observer_counts_committed_writes_only() -> None:
    metrics = Metrics()
    observe = written_observer(metrics)

    def write(eid: str, kind: str) -> SimpleNamespace:
        return SimpleNamespace(
            record=SimpleNamespace(id=eid),
            event={"event_type": f"jp.city-os.entity.{kind}", "tenant": "saga"},
        )

    observe([write("a", "created"), write("b", "created"), write("c", "created")], {"a", "b"})
    text = (await metrics.render()).decode()
    assert 'cityos_entities_written_total{operation="created",tenant="saga"} 2.0' in text
