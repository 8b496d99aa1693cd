"""/v2/op/update, /v2/op/query, /v2/types, /version and /statistics over real HTTP."""

from __future__ import annotations

from typing import Any

from tests.integration.ngsiv2.support import Client, create_v2, error, get_v2, room, v2


async def update(
    client: Client, service: str, action: str, entities: list[Any], query: str = ""
) -> Any:
    return await client.post(
        "/v2/op/update" + query,
        json={"actionType": action, "entities": entities},
        headers=v2(service),
    )


async def test_op_update_actions(client: Client, service: str) -> None:
    rooms = [{"id": f"R{n}", "type": "Room", "t": {"value": n}} for n in (1, 2)]
    resp = await update(client, service, "append", rooms)
    assert resp.status == 204, await resp.text()
    resp = await update(
        client, service, "append", [{"id": "R1", "type": "Room", "h": {"value": 5}}]
    )
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities/R1?options=keyValues") == {
        "id": "R1", "type": "Room", "t": 1, "h": 5,
    }  # fmt: skip
    resp = await update(
        client, service, "appendStrict", [{"id": "R1", "type": "Room", "t": {"value": 9}}]
    )
    await error(resp, 422, "Unprocessable", "already exist")
    resp = await update(client, service, "update", [{"id": "R2", "t": 7}], "?options=keyValues")
    assert resp.status == 204, await resp.text()
    assert await get_v2(client, service, "/v2/entities/R2/attrs/t/value") == 7
    resp = await update(client, service, "update", [{"id": "R2", "nope": 1}], "?options=keyValues")
    await error(resp, 422, "Unprocessable", "do not exist")
    resp = await update(client, service, "update", [{"id": "R9", "t": 1}], "?options=keyValues")
    await error(resp, 404, "NotFound")
    resp = await update(client, service, "replace", [{"id": "R1", "z": {"value": "only"}}])
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities/R1?options=keyValues") == {
        "id": "R1", "type": "Room", "z": "only",
    }  # fmt: skip
    resp = await update(client, service, "delete", [{"id": "R1", "z": {}}])
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities/R1?options=keyValues") == {
        "id": "R1", "type": "Room",
    }  # fmt: skip
    resp = await update(client, service, "delete", [{"id": "R1"}, {"id": "R2"}])
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities") == []


async def test_op_update_refuses_bad_input_before_writing(client: Client, service: str) -> None:
    batch = [{"id": "Ok1", "type": "T", "a": {"value": 1}}, {"id": "Bad", "a": {"value": "<x>"}}]
    resp = await update(client, service, "append", batch)
    await error(resp, 400, "BadRequest", "Invalid characters")
    assert await get_v2(client, service, "/v2/entities") == []
    resp = await update(client, service, "explode", batch)
    await error(resp, 400, "BadRequest", "actionType")


async def test_op_update_refuses_entities_that_are_not_objects(
    client: Client, service: str
) -> None:
    """Found by fuzzing: an item that is not an object was a 500 (before anything was written)."""
    for action in ("append", "update", "delete"):
        for item in ([None, None], "Room1", 3):
            batch = [{"id": "Ok1", "type": "T", "a": {"value": 1}}, item]
            resp = await update(client, service, action, batch)
            await error(resp, 400, "BadRequest", "JSON object")
    assert await get_v2(client, service, "/v2/entities") == []


async def test_op_query(client: Client, service: str) -> None:
    for n in (1, 2, 3):
        await create_v2(client, service, room(n))
    body = {
        "entities": [{"idPattern": "^Room[23]", "type": "Room"}],
        "attrs": ["temperature"],
        "expression": {"q": "temperature>20"},
    }
    resp = await client.post(
        "/v2/op/query?options=keyValues,count&orderBy=id", json=body, headers=v2(service)
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Fiware-Total-Count"] == "2"
    assert await resp.json() == [
        {"id": "Room2", "type": "Room", "temperature": 23.5},
        {"id": "Room3", "type": "Room", "temperature": 23.5},
    ]
    geo = {
        "expression": {
            "georel": "near;maxDistance:100",
            "geometry": "point",
            "coords": "33.25,130.3",
        }
    }
    resp = await client.post("/v2/op/query?attrs=id", json=geo, headers=v2(service))
    assert len(await resp.json()) == 3
    bad = await client.post("/v2/op/query", json={"entities": "x"}, headers=v2(service))
    await error(bad, 400, "BadRequest")


async def test_types(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    await create_v2(client, service, room(2))
    await create_v2(client, service, {"id": "Car1", "type": "Car", "speed": {"value": 1}})
    types = await get_v2(client, service, "/v2/types")
    assert [t["type"] for t in types] == ["Car", "Room"]
    assert types[0] == {"type": "Car", "attrs": {"speed": {"types": ["Property"]}}, "count": 1}
    assert types[1]["count"] == 2
    assert set(types[1]["attrs"]) >= {"temperature", "location", "refBuilding"}
    assert await get_v2(client, service, "/v2/types?options=values") == ["Car", "Room"]
    one = await get_v2(client, service, "/v2/types/Car")
    assert one["count"] == 1
    missing = await client.get("/v2/types/Plane", headers=v2(service))
    await error(missing, 404, "NotFound")


async def test_version_and_statistics(client: Client) -> None:
    resp = await client.get("/version")
    body = await resp.json()
    assert resp.status == 200
    assert body["orion"]["version"].startswith("3.")
    assert "uptime" in body["orion"]
    stats = await (await client.get("/statistics")).json()
    assert stats["uptime_in_secs"] >= 0
    entry = await (await client.get("/v2")).json()
    assert entry["entities_url"] == "/v2/entities"
