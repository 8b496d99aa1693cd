"""Distributed retrieve and query across several city-os instances (federation/distributed.py).

The prefecture broker registers the city brokers as context sources; every request below is
real HTTP from the test to the prefecture and from the prefecture to the cities.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.federation_ops.support import Broker, brokers, shelter

ID = "urn:ngsi-ld:Shelter:"


def ids(body: list[dict[str, object]]) -> list[object]:
    return sorted(e["id"] for e in body)


async def test_inclusive_query_merges_local_and_sources() -> None:
    async with brokers("pref", "saga", "ogi") as b:
        pref, saga, ogi = b["pref"], b["saga"], b["ogi"]
        await pref.create(shelter(ID + "pref-1", capacity=100))
        await saga.create(shelter(ID + "saga-1", capacity=200))
        await saga.create(shelter(ID + "saga-2", capacity=50))
        await ogi.create(shelter(ID + "ogi-1", capacity=80))
        await pref.register(saga)
        await pref.register(ogi)
        status, body, resp = await pref.get("/entities", type="Shelter")
        assert status == 200, body
        assert ids(body) == [ID + "ogi-1", ID + "pref-1", ID + "saga-1", ID + "saga-2"]
        assert "NGSILD-Warning" not in resp.headers
        # q is evaluated by each place on its own entities
        status, body, _ = await pref.get("/entities", type="Shelter", q=f"{'capacity'}>=80")
        assert status == 200, body
        assert ids(body) == [ID + "ogi-1", ID + "pref-1", ID + "saga-1"]
        # local=true: the prefecture's own entities only
        status, body, _ = await pref.get("/entities", type="Shelter", local="true")
        assert ids(body) == [ID + "pref-1"]
        # count across sources, each entity once
        status, body, resp = await pref.get("/entities", type="Shelter", count="true", limit="2")
        assert resp.headers["NGSILD-Results-Count"] == "4" and len(body) == 2


async def test_retrieve_entity_held_only_by_a_source() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await saga.create(shelter(ID + "saga-1", capacity=200))
        await pref.register(saga)
        status, body, _ = await pref.get(f"/entities/{ID}saga-1")
        assert status == 200, body
        assert body["capacity"]["value"] == 200
        status, body, _ = await pref.get(f"/entities/{ID}nowhere")
        assert status == 404 and body["type"].endswith("ResourceNotFound")
        status, _, _ = await pref.get(f"/entities/{ID}saga-1", local="true")
        assert status == 404


async def test_inclusive_same_entity_attributes_merged_newest_wins() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        old = {"type": "Property", "value": 1, "observedAt": "2026-01-01T00:00:00Z"}
        new = {"type": "Property", "value": 2, "observedAt": "2026-06-01T00:00:00Z"}
        await pref.create(shelter(ID + "x", capacity=old, name="Prefectural Hall"))
        await saga.create(shelter(ID + "x", capacity=new, flood=True))
        await pref.register(saga)
        status, body, _ = await pref.get(f"/entities/{ID}x")
        assert status == 200, body
        assert body["capacity"]["value"] == 2  # most recent observedAt
        assert body["name"]["value"] == "Prefectural Hall"  # local only
        assert body["flood"]["value"] is True  # source only
        status, body, _ = await pref.get("/entities", type="Shelter")
        assert [e["id"] for e in body] == [ID + "x"]  # one entity, not two


async def test_exclusive_source_owns_its_attributes() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await saga.create(shelter(ID + "x", capacity=300, name="remote name"))
        await pref.register(
            saga,
            mode="exclusive",
            information=[
                {"entities": [{"id": ID + "x", "type": "Shelter"}], "propertyNames": ["capacity"]}
            ],
        )
        await pref.create(shelter(ID + "x", name="local name"))
        status, body, _ = await pref.get(f"/entities/{ID}x")
        assert status == 200, body
        assert body["capacity"]["value"] == 300  # owned by the source
        assert body["name"]["value"] == "local name"  # not registered: stays local
        status, body, _ = await pref.get(f"/entities/{ID}x", local="true")
        assert "capacity" not in body


async def test_auxiliary_only_fills_gaps() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.create(shelter(ID + "x", capacity=10))
        newer = {"type": "Property", "value": 99, "observedAt": "2030-01-01T00:00:00Z"}
        await saga.create(shelter(ID + "x", capacity=newer, flood=True))
        await pref.register(saga, mode="auxiliary")
        status, body, _ = await pref.get(f"/entities/{ID}x")
        assert status == 200, body
        assert body["capacity"]["value"] == 10
        assert body["flood"]["value"] is True


@pytest.fixture
async def bad_sources() -> AsyncIterator[tuple[str, str]]:
    """A source that never answers and one that answers 500."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response([])

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"detail": "database on fire"}, status=500)

    hanging, failing = web.Application(), web.Application()
    hanging.router.add_route("*", "/{tail:.*}", hang)
    failing.router.add_route("*", "/{tail:.*}", broken)
    servers = [TestServer(hanging), TestServer(failing)]
    for server in servers:
        await server.start_server()
    try:
        yield tuple(f"http://127.0.0.1:{s.port}" for s in servers)  # type: ignore[misc]
    finally:
        release.set()
        for server in servers:
            await server.close()


async def test_hanging_and_failing_sources_leave_the_rest_correct_and_reported(
    bad_sources: tuple[str, str],
) -> None:
    hanging, failing = bad_sources
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.create(shelter(ID + "pref-1", capacity=1))
        await saga.create(shelter(ID + "saga-1", capacity=2))
        await pref.register(saga)
        hung = await pref.register(
            Broker("hang", hanging, "x", pref.http), management={"timeout": 300}
        )
        broke = await pref.register(Broker("fail", failing, "x", pref.http))
        status, body, resp = await pref.get("/entities", type="Shelter")
        assert status == 200, body
        assert ids(body) == [ID + "pref-1", ID + "saga-1"]
        warnings = resp.headers.getall("NGSILD-Warning")
        assert len(warnings) == 2
        assert any(hung in w and "no answer within 0.3 s" in w for w in warnings)
        assert any(broke in w and "HTTP 500: database on fire" in w for w in warnings)


async def test_loop_a_b_a_ends_and_answers_each_entity_once() -> None:
    async with brokers("a", "b") as br:
        a, b = br["a"], br["b"]
        await a.create(shelter(ID + "a-1"))
        await b.create(shelter(ID + "b-1"))
        await a.register(b)
        await b.register(a)
        for broker in (a, b):
            status, body, _ = await broker.get("/entities", type="Shelter")
            assert status == 200, body
            assert ids(body) == [ID + "a-1", ID + "b-1"]


async def test_pages_across_sources_hold_each_entity_exactly_once() -> None:
    async with brokers("pref", "saga", "ogi") as b:
        pref, saga, ogi = b["pref"], b["saga"], b["ogi"]
        expected = []
        for broker in (pref, saga, ogi):
            for n in range(5):
                entity_id = f"{ID}{broker.name}-{n}"
                expected.append(entity_id)
                await broker.create(shelter(entity_id, capacity=n))
        await pref.register(saga)
        await pref.register(ogi)
        seen: list[object] = []
        offset = 0
        while True:
            status, body, resp = await pref.get(
                "/entities", type="Shelter", limit="4", offset=str(offset)
            )
            assert status == 200, body
            seen.extend(e["id"] for e in body)
            if 'rel="next"' not in ",".join(resp.headers.getall("Link", [])):
                break
            offset += 4
        assert sorted(seen) == sorted(expected)
        assert len(seen) == len(set(seen)) == 15


async def test_types_and_attributes_join_the_sources() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.create(shelter(ID + "p", capacity=1))
        await saga.create(shelter(ID + "s1", flood=True))
        await saga.create(shelter(ID + "s2", flood=False))
        await pref.register(saga)
        status, body, _ = await pref.get("/types")
        assert status == 200 and body["typeList"] == ["Shelter"]
        status, body, _ = await pref.get("/attributes")
        assert sorted(body["attributeList"]) == ["capacity", "flood"]
        status, body, _ = await pref.get("/types/Shelter")
        assert status == 200 and body["entityCount"] == 3
        names = sorted(d["attributeName"] for d in body["attributeDetails"])
        assert names == ["capacity", "flood"]
        status, body, _ = await pref.get("/attributes/flood")  # known only at the source
        assert status == 200 and body["attributeCount"] == 2
