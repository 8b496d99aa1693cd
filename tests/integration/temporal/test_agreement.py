"""The entity API and the temporal API agree: after random sequences of entity operations the
last instance of each attribute (and dataset) in the temporal API equals the entity retrieved."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.temporal.helpers import API, Client, get

ATTRS = ("level", "flow", "state")
DATASETS = (None, "urn:ds:a")
_value = st.one_of(st.integers(-1000, 1000), st.sampled_from(["low", "high", "normal"]))


def _instance(value: Any, dataset: str | None) -> dict[str, Any]:
    inst: dict[str, Any] = {"type": "Property", "value": value}
    if dataset:
        inst["datasetId"] = dataset
    return inst


_op = st.one_of(
    st.tuples(st.just("patch"), st.sampled_from(ATTRS), _value, st.sampled_from(DATASETS)),
    st.tuples(st.just("append"), st.sampled_from(ATTRS), _value, st.sampled_from(DATASETS)),
    st.tuples(st.just("merge"), st.sampled_from(ATTRS), _value, st.just(None)),
    st.tuples(st.just("delete"), st.sampled_from(ATTRS), st.just(0), st.sampled_from(DATASETS)),
    st.tuples(st.just("replace"), st.sampled_from(ATTRS), _value, st.just(None)),
    st.tuples(st.just("upsert"), st.sampled_from(ATTRS), _value, st.just(None)),
)


async def _apply(
    client: Client, h: dict[str, str], eid: str, op: tuple[str, str, Any, Any]
) -> None:
    kind, attr, value, dataset = op
    url = f"{API}/entities/{eid}"
    if kind == "patch":
        await client.patch(f"{url}/attrs", json={attr: _instance(value, dataset)}, headers=h)
    elif kind == "append":
        await client.post(f"{url}/attrs", json={attr: _instance(value, dataset)}, headers=h)
    elif kind == "merge":
        await client.patch(url, json={attr: value}, headers=h)
    elif kind == "delete":
        q = f"?datasetId={dataset}" if dataset else ""
        await client.delete(f"{url}/attrs/{attr}{q}", headers=h)
    elif kind == "replace":
        body = {"type": "Gauge", attr: _instance(value, None)}
        await client.put(url, json=body, headers=h)
    else:
        body = [{"id": eid, "type": "Gauge", attr: _instance(value, None)}]
        await client.post(f"{API}/entityOperations/upsert?options=update", json=body, headers=h)


def _strip(inst: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in inst.items() if k in ("type", "value", "datasetId")}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(_op, min_size=1, max_size=8))
async def test_last_instances_equal_the_entity(client: Client, ops: list[Any]) -> None:
    tenant = "test-" + uuid.uuid4().hex[:12]
    h = {"NGSILD-Tenant": tenant}
    eid = "urn:ngsi-ld:Gauge:" + uuid.uuid4().hex[:8]
    entity = {"id": eid, "type": "Gauge", "level": {"type": "Property", "value": 0}}
    assert (await client.post(f"{API}/entities", json=entity, headers=h)).status == 201
    for op in ops:
        await _apply(client, h, eid, op)
    r = await client.get(f"{API}/entities/{eid}", headers=h)
    assert r.status == 200
    current = await r.json()
    status, history, _ = await get(client, tenant, f"/entities/{eid}")
    assert status == 200
    for attr in ATTRS:
        live = current.get(attr)
        live_list = [] if live is None else live if isinstance(live, list) else [live]
        expected = {i.get("datasetId"): _strip(i) for i in live_list}
        last: dict[Any, dict[str, Any]] = {}
        for inst in history.get(attr, []):
            last[inst.get("datasetId")] = inst
        found = {ds: _strip(i) for ds, i in last.items() if "deletedAt" not in i}
        assert found == expected, (attr, ops)


async def test_temporal_provision_writes_the_current_state(client: Client, tenant: str) -> None:
    """POST /temporal/entities: the newest instance of each attribute becomes the entity's
    current state; DELETE /temporal/entities/{id} removes both."""
    h = {"NGSILD-Tenant": tenant}
    eid = "urn:ngsi-ld:Gauge:provisioned"
    body = {
        "id": eid,
        "type": "Gauge",
        "level": [
            {"type": "Property", "value": 5, "observedAt": "2020-01-01T00:02:00Z"},
            {"type": "Property", "value": 9, "observedAt": "2020-01-01T00:05:00Z"},
            {"type": "Property", "value": 7, "observedAt": "2020-01-01T00:03:00Z"},
        ],
    }
    r = await client.post(f"{API}/temporal/entities", json=body, headers=h)
    assert r.status == 201
    r = await client.get(f"{API}/entities/{eid}", headers=h)
    assert r.status == 200
    assert (await r.json())["level"]["value"] == 9
    status, history, _ = await get(client, tenant, f"/entities/{eid}")
    assert status == 200 and [i["value"] for i in history["level"]] == [5, 7, 9]
    assert (await client.delete(f"{API}/temporal/entities/{eid}", headers=h)).status == 204
    assert (await client.get(f"{API}/entities/{eid}", headers=h)).status == 404
    status, _, _ = await get(client, tenant, f"/entities/{eid}")
    assert status == 404
