"""Distributed temporal retrieve and query across city-os instances (distributed_temporal.py).

The prefecture registers the city brokers for retrieveTemporal/queryTemporal; every request is
real HTTP from the test to the prefecture and from the prefecture to the cities, each city
keeping its own instances in its own temporal store.
"""

from __future__ import annotations

from typing import Any

from tests.integration.federation_ops.support import API, CONTEXT, Broker, brokers
from tests.integration.federation_ops.test_distributed_query import bad_sources

__all__ = ["bad_sources"]  # the fixture (a hanging and a failing source)

ID = "urn:ngsi-ld:Shelter:"
TEMPORAL_OPS = ["retrieveTemporal", "queryTemporal"]
T = [f"2026-07-0{d}T00:00:00Z" for d in range(1, 8)]  # T[0] … T[6], one day apart


def reading(value: Any, at: str) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": at}


async def temporal(broker: Broker, entity_id: str, **attrs: list[dict[str, Any]]) -> None:
    body = {"id": entity_id, "type": "Shelter", **attrs, "@context": CONTEXT}
    async with broker.http.post(
        f"{broker.url}{API}/temporal/entities",
        json=body,
        headers=broker.headers(**{"Content-Type": "application/ld+json"}),
    ) as resp:
        assert resp.status in (201, 204), await resp.text()


async def post_query(broker: Broker, body: dict[str, Any]) -> tuple[int, Any]:
    async with broker.http.post(
        f"{broker.url}{API}/temporal/entityOperations/query",
        json=body,
        headers=broker.headers(
            **{"Content-Type": "application/json", "Accept": "application/json"},
            Link=broker.link(),
        ),
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def values(body: dict[str, Any], attr: str) -> list[Any]:
    return [i["value"] for i in body[attr]]


def times(body: dict[str, Any], attr: str) -> list[str]:
    return [i["observedAt"] for i in body[attr]]


async def test_inclusive_retrieve_merges_instances_in_time_order_and_lastn_after() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        x = ID + "x"
        await temporal(pref, x, capacity=[reading(10, T[0]), reading(30, T[2])])
        await temporal(saga, x, capacity=[reading(20, T[1]), reading(40, T[3])])
        await temporal(saga, x, flood=[reading(True, T[1])])
        await pref.register(saga, operations=TEMPORAL_OPS)
        status, body, resp = await pref.get(f"/temporal/entities/{x}")
        assert status == 200, body
        assert values(body, "capacity") == [10, 20, 30, 40]
        assert times(body, "capacity") == T[:4]
        assert values(body, "flood") == [True]
        assert "NGSILD-Warning" not in resp.headers
        # timerel=between: the same window everywhere (timeAt ≤ t < endTimeAt)
        status, body, _ = await pref.get(
            f"/temporal/entities/{x}", timerel="between", timeAt=T[1], endTimeAt=T[3]
        )
        assert status == 200, body
        assert values(body, "capacity") == [20, 30]
        # lastN over the merged instances: the last two of all places, in time order
        status, body, _ = await pref.get(
            f"/temporal/entities/{x}", lastN="2", timerel="before", timeAt=T[6]
        )
        assert status == 200, body
        assert values(body, "capacity") == [30, 40]
        # temporalValues merge the [value, time] pairs the same way
        status, body, _ = await pref.get(f"/temporal/entities/{x}", options="temporalValues")
        assert status == 200, body
        assert body["capacity"]["values"] == [[10, T[0]], [20, T[1]], [30, T[2]], [40, T[3]]]
        # pick applies to the merged entity (the source's attributes included)
        status, body, _ = await pref.get(f"/temporal/entities/{x}", pick="id,flood")
        assert status == 200, body
        assert set(body) == {"id", "flood"}
        # local=true: the prefecture's own instances only
        status, body, _ = await pref.get(f"/temporal/entities/{x}", local="true")
        assert status == 200, body
        assert values(body, "capacity") == [10, 30] and "flood" not in body


async def test_entity_only_at_a_source_and_instances_deduplicated_by_instance_id() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        y = ID + "y"
        await temporal(saga, y, capacity=[reading(1, T[0]), reading(2, T[1])])
        # two registrations of the same source: its instances arrive twice, shown once
        await pref.register(saga, operations=TEMPORAL_OPS)
        await pref.register(saga, operations=["queryTemporal"])
        status, body, _ = await pref.get(f"/temporal/entities/{y}")
        assert status == 200, body
        assert values(body, "capacity") == [1, 2]
        assert len({i["instanceId"] for i in body["capacity"]}) == 2
        status, body, _ = await pref.get(f"/temporal/entities/{y}", local="true")
        assert status == 404 and body["type"].endswith("ResourceNotFound")
        status, body, _ = await pref.get(f"/temporal/entities/{ID}nowhere")
        assert status == 404, body


async def test_inclusive_query_get_and_post_with_between_lastn_and_pages() -> None:
    async with brokers("pref", "saga", "ogi") as b:
        pref, saga, ogi = b["pref"], b["saga"], b["ogi"]
        await temporal(pref, ID + "a", capacity=[reading(1, T[0]), reading(3, T[2])])
        await temporal(saga, ID + "a", capacity=[reading(2, T[1]), reading(4, T[3])])
        await temporal(saga, ID + "b", capacity=[reading(5, T[4])])
        await temporal(ogi, ID + "c", capacity=[reading(6, T[5])])
        await pref.register(saga, operations=TEMPORAL_OPS)
        await pref.register(ogi, operations=["queryTemporal"])
        status, body, resp = await pref.get(
            "/temporal/entities", type="Shelter", timerel="between", timeAt=T[1], endTimeAt=T[5]
        )
        assert status == 200, body
        assert [e["id"] for e in body] == [ID + "a", ID + "b"]  # c has no instance in the window
        assert values(body[0], "capacity") == [2, 3, 4]
        assert "NGSILD-Warning" not in resp.headers
        status, body, _ = await pref.get(
            "/temporal/entities", type="Shelter", lastN="1", timerel="before", timeAt=T[6]
        )
        assert status == 200, body
        assert {e["id"]: values(e, "capacity") for e in body} == {
            ID + "a": [4],
            ID + "b": [5],
            ID + "c": [6],
        }
        # pages of the merged list: ordered by id, each entity once, counted once
        seen = []
        for offset in range(3):
            status, body, resp = await pref.get(
                "/temporal/entities", type="Shelter", limit="1", offset=str(offset), count="true"
            )
            assert status == 200, body
            assert resp.headers["NGSILD-Results-Count"] == "3"
            seen.extend(e["id"] for e in body)
        assert seen == [ID + "a", ID + "b", ID + "c"]
        # POST /temporal/entityOperations/query: the temporalQ reaches the sources too
        query = {
            "type": "Query",
            "entities": [{"type": "Shelter"}],
            "temporalQ": {"timerel": "before", "timeAt": T[2]},
        }
        status, body = await post_query(pref, query)
        assert status == 200, body
        assert {e["id"]: values(e, "capacity") for e in body} == {ID + "a": [1, 2]}
        # local=true skips the sources
        status, body, _ = await pref.get("/temporal/entities", type="Shelter", local="true")
        assert [e["id"] for e in body] == [ID + "a"] and values(body[0], "capacity") == [1, 3]


async def test_exclusive_source_owns_its_registered_attributes() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        x = ID + "x"
        await temporal(saga, x, capacity=[reading(300, T[1])], name=[reading("remote", T[1])])
        await pref.register(
            saga,
            mode="exclusive",
            operations=TEMPORAL_OPS,
            information=[
                {"entities": [{"id": x, "type": "Shelter"}], "propertyNames": ["capacity"]}
            ],
        )
        await temporal(pref, x, capacity=[reading(1, T[0])], name=[reading("local", T[0])])
        status, body, _ = await pref.get(f"/temporal/entities/{x}")
        assert status == 200, body
        assert values(body, "capacity") == [300]  # the stale local instance is not shown
        assert values(body, "name") == ["local"]  # not registered: stays local
        status, body, _ = await pref.get("/temporal/entities", type="Shelter")
        assert status == 200, body
        assert len(body) == 1 and values(body[0], "capacity") == [300]
        status, body, _ = await pref.get(f"/temporal/entities/{x}", local="true")
        assert values(body, "capacity") == [1]


async def test_auxiliary_source_only_fills_gaps() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        x = ID + "x"
        await temporal(pref, x, capacity=[reading(10, T[0])])
        await temporal(saga, x, capacity=[reading(99, T[5])], flood=[reading(True, T[5])])
        await pref.register(saga, mode="auxiliary", operations=TEMPORAL_OPS)
        status, body, _ = await pref.get(f"/temporal/entities/{x}")
        assert status == 200, body
        assert values(body, "capacity") == [10]
        assert values(body, "flood") == [True]


async def test_hanging_and_failing_sources_are_reported_and_the_rest_is_answered(
    bad_sources: tuple[str, str],
) -> None:
    hanging, failing = bad_sources
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await temporal(pref, ID + "p", capacity=[reading(1, T[0])])
        await temporal(saga, ID + "s", capacity=[reading(2, T[1])])
        await pref.register(saga, operations=TEMPORAL_OPS)
        hung = await pref.register(
            Broker("hang", hanging, "x", pref.http),
            operations=TEMPORAL_OPS,
            management={"timeout": 300},
        )
        broke = await pref.register(
            Broker("fail", failing, "x", pref.http), operations=TEMPORAL_OPS
        )
        status, body, resp = await pref.get("/temporal/entities", type="Shelter")
        assert status == 200, body
        assert [e["id"] for e in body] == [ID + "p", ID + "s"]
        warnings = resp.headers.getall("NGSILD-Warning")
        assert len(warnings) == 2
        assert any(hung in w and "no answer within 0.3 s" in w for w in warnings)
        assert any(broke in w and "HTTP 500: database on fire" in w for w in warnings)
        status, body, resp = await pref.get(f"/temporal/entities/{ID}s")
        assert status == 200 and values(body, "capacity") == [2]
        assert len(resp.headers.getall("NGSILD-Warning")) == 2
        status, body, resp = await pref.get("/temporal/entities", type="Shelter", local="true")
        assert [e["id"] for e in body] == [ID + "p"] and "NGSILD-Warning" not in resp.headers


async def test_aggregation_with_sources_refused_and_loops_end() -> None:
    async with brokers("a", "b") as br:
        a, b = br["a"], br["b"]
        await temporal(a, ID + "a", capacity=[reading(1, T[0])])
        await temporal(b, ID + "b", capacity=[reading(2, T[1])])
        await a.register(b, operations=TEMPORAL_OPS)
        await b.register(a, operations=TEMPORAL_OPS)
        for broker in (a, b):  # A→B→A: each place answers once
            status, body, _ = await broker.get("/temporal/entities", type="Shelter")
            assert status == 200, body
            assert [e["id"] for e in body] == [ID + "a", ID + "b"]
        params = {"options": "aggregatedValues", "aggrMethods": "max", "aggrPeriodDuration": "P1D"}
        status, body, _ = await a.get("/temporal/entities", type="Shelter", **params)
        assert status == 400 and "aggrMethods" in body["detail"], body
        status, body, _ = await a.get("/temporal/entities", type="Shelter", local="true", **params)
        assert status == 200 and [e["id"] for e in body] == [ID + "a"], body


async def test_entity_map_of_a_temporal_query_fixes_its_pages() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await temporal(pref, ID + "a", capacity=[reading(1, T[0])])
        await temporal(saga, ID + "a", capacity=[reading(2, T[1])])
        await temporal(saga, ID + "b", capacity=[reading(3, T[2])])
        reg = await pref.register(saga, operations=TEMPORAL_OPS)
        status, body, resp = await pref.get(
            "/temporal/entities", type="Shelter", limit="1", entityMap="true"
        )
        assert status == 201, body
        assert [e["id"] for e in body] == [ID + "a"] and values(body[0], "capacity") == [1, 2]
        location = resp.headers["NGSILD-EntityMap"]
        map_id = location.rsplit("/", 1)[1]
        status, doc, _ = await pref.get(f"/entityMaps/{map_id}")
        assert status == 200, doc
        assert doc["entityMap"] == {ID + "a": ["@none", reg], ID + "b": [reg]}
        # an entity added afterwards is not in the map's pages
        await temporal(saga, ID + "c", capacity=[reading(4, T[3])])
        seen = []
        for offset in ("0", "1", "2"):
            async with pref.http.get(
                f"{pref.url}{API}/temporal/entities",
                params={"type": "Shelter", "limit": "1", "offset": offset},
                headers=pref.headers(
                    Accept="application/json", Link=pref.link(), **{"NGSILD-EntityMap": location}
                ),
            ) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["NGSILD-EntityMap"] == location
                seen.extend(e["id"] for e in await resp.json())
        assert seen == [ID + "a", ID + "b"]
        # the retrieve makes a map of the one entity and the places that held it
        status, body, resp = await pref.get(f"/temporal/entities/{ID}a", entityMap="true")
        assert status == 200, body
        map_id = resp.headers["NGSILD-EntityMap"].rsplit("/", 1)[1]
        status, doc, _ = await pref.get(f"/entityMaps/{map_id}")
        assert doc["entityMap"] == {ID + "a": ["@none", reg]}
