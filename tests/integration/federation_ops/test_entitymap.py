"""EntityMaps (federation/entitymap.py): pages of a distributed query hold each entity once.

Three real city-os instances; the map is made by the prefecture for a query that its own
entities and two cities' sources answer.
"""

from __future__ import annotations

from typing import Any

from tests.integration.federation_ops.support import API, Broker, brokers, shelter

ID = "urn:ngsi-ld:Shelter:"


async def _send(broker: Broker, method: str, path: str, **kw: Any) -> tuple[int, Any, Any]:
    async with broker.http.request(
        method, f"{broker.url}{API}{path}", headers=broker.headers(Link=broker.link()), **kw
    ) as resp:
        body = await resp.json(content_type=None) if resp.content_length != 0 else None
        return resp.status, body, resp.headers


async def test_entity_map_pages_and_lifecycle() -> None:
    async with brokers("pref", "saga", "ogi") as b:
        pref, saga, ogi = b["pref"], b["saga"], b["ogi"]
        expected = []
        for broker in (pref, saga, ogi):
            for n in range(4):
                expected.append(f"{ID}{broker.name}-{n}")
                await broker.create(shelter(expected[-1], capacity=n))
        saga_reg = await pref.register(saga)
        await pref.register(ogi)

        status, body, headers = await _send(
            pref, "GET", "/entities", params={"type": "Shelter", "entityMap": "true", "limit": "5"}
        )
        assert status == 201, body
        location = headers["NGSILD-EntityMap"]
        map_id = location.rsplit("/", 1)[1]
        status, doc, _ = await _send(pref, "GET", f"/entityMaps/{map_id}")
        assert status == 200 and doc["type"] == "EntityMap"
        assert sorted(doc["entityMap"]) == sorted(expected)
        assert doc["entityMap"][f"{ID}pref-0"] == ["@none"]
        assert doc["entityMap"][f"{ID}saga-0"] == [saga_reg]

        # a city's entity deleted after the map was made: skipped and pruned
        async with saga.http.delete(
            f"{saga.url}{API}/entities/{ID}saga-1", headers=saga.headers()
        ) as resp:
            assert resp.status == 204
        seen: list[str] = []
        offset = 0
        while True:
            async with pref.http.get(
                f"{pref.url}{API}/entities",
                params={"type": "Shelter", "limit": "5", "offset": str(offset), "count": "true"},
                headers=pref.headers(Link=pref.link(), **{"NGSILD-EntityMap": location}),
            ) as resp:
                page = await resp.json(content_type=None)
                assert resp.status == 200, page
                assert resp.headers["NGSILD-Results-Count"] == "11"
                seen.extend(e["id"] for e in page)
                links = ",".join(resp.headers.getall("Link", []))
            if 'rel="next"' not in links:
                break
            offset += 5
        assert sorted(seen) == sorted(i for i in expected if i != f"{ID}saga-1")
        assert len(seen) == len(set(seen))
        status, doc, _ = await _send(pref, "GET", f"/entityMaps/{map_id}")
        assert f"{ID}saga-1" not in doc["entityMap"]

        status, _, _ = await _send(
            pref, "PATCH", f"/entityMaps/{map_id}", json={"expiresAt": "2000-01-01T00:00:00Z"}
        )
        assert status == 204
        status, problem, _ = await _send(pref, "GET", f"/entityMaps/{map_id}")
        assert status == 404 and problem["type"].endswith("ResourceNotFound")


async def test_entity_map_resource_errors() -> None:
    async with brokers("pref") as b:
        pref = b["pref"]
        await pref.create(shelter(ID + "x"))
        status, problem, _ = await _send(pref, "GET", "/entityMaps", params={"id": ID + "x"})
        assert status == 400 and problem["type"].endswith("BadRequestData")  # too wide
        status, problem, _ = await _send(
            pref, "GET", "/entityMaps", params={"type": "Shelter", "entityMapLifetime": "1hour"}
        )
        assert status == 400 and "entityMapLifetime" in problem["detail"]
        status, doc, headers = await _send(
            pref, "GET", "/entityMaps", params={"type": "Shelter", "entityMapLifetime": "P3650D"}
        )
        assert status == 201 and doc["entityMap"] == {ID + "x": ["@none"]}
        assert doc["expiresAt"] < "2100-01-01"
        map_id = headers["NGSILD-EntityMap"].rsplit("/", 1)[1]
        status, problem, _ = await _send(pref, "GET", "/entityMaps/not%20a%20uri")
        assert status == 400
        status, _, _ = await _send(pref, "DELETE", f"/entityMaps/{map_id}")
        assert status == 204
        status, problem, _ = await _send(pref, "DELETE", f"/entityMaps/{map_id}")
        assert status == 404 and problem["type"].endswith("ResourceNotFound")


async def test_temporal_entity_map_needs_and_applies_the_window() -> None:
    async with brokers("pref") as b:
        pref = b["pref"]
        await pref.create(shelter(ID + "t"))
        status, problem, _ = await _send(
            pref, "GET", "/temporal/entityMaps", params={"type": "Shelter"}
        )
        assert status == 400 and "temporal query" in problem["detail"]
        window = {"type": "Shelter", "timerel": "before", "timeproperty": "createdAt"}
        status, doc, _ = await _send(
            pref, "GET", "/temporal/entityMaps", params={**window, "timeAt": "2999-01-01T00:00:00Z"}
        )
        assert status == 201 and doc["entityMap"] == {ID + "t": ["@none"]}
        status, doc, _ = await _send(
            pref, "GET", "/temporal/entityMaps", params={**window, "timeAt": "2000-01-01T00:00:00Z"}
        )
        assert status == 201 and doc["entityMap"] == {}
