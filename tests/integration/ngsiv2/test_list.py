"""GET /v2/entities: selection (id, idPattern, type, typePattern, q, mq, geo), projection,
ordering, paging and options, over real HTTP against PostgreSQL/PostGIS."""

from __future__ import annotations

from urllib.parse import quote

from tests.integration.ngsiv2.support import Client, create_v2, error, get_v2, room, v2


async def _rooms(client: Client, service: str) -> None:
    temps = {1: 18.0, 2: 22.0, 3: 30.0}
    coords = {1: [130.30, 33.25], 2: [130.31, 33.25], 3: [131.0, 34.0]}
    for n, t in temps.items():
        body = room(n)
        body["temperature"]["value"] = t
        body["temperature"]["metadata"]["accuracy"]["value"] = n / 10
        body["location"]["value"]["coordinates"] = coords[n]
        body["name"] = {"value": f"room {n}" if n != 3 else "hall"}
        await create_v2(client, service, body)
    await create_v2(client, service, {"id": "Car1", "type": "Car", "speed": {"value": 50}})


async def ids(client: Client, service: str, query: str) -> list[str]:
    body = await get_v2(client, service, "/v2/entities?" + query)
    return [e["id"] for e in body]


async def test_selection(client: Client, service: str) -> None:
    await _rooms(client, service)
    assert await ids(client, service, "orderBy=id") == ["Car1", "Room1", "Room2", "Room3"]
    assert await ids(client, service, "type=Car") == ["Car1"]
    assert await ids(client, service, "type=Car,Room&orderBy=!id&limit=2") == ["Room3", "Room2"]
    assert await ids(client, service, "id=Room1,Car1&orderBy=id") == ["Car1", "Room1"]
    assert await ids(client, service, "idPattern=^Room[12]&orderBy=id") == ["Room1", "Room2"]
    assert await ids(client, service, "typePattern=^C") == ["Car1"]
    assert await ids(client, service, "typePattern=^Z") == []
    assert await ids(client, service, "type=Room&orderBy=temperature&offset=1") == [
        "Room2",
        "Room3",
    ]


async def test_simple_query_language(client: Client, service: str) -> None:
    await _rooms(client, service)

    async def q(expr: str, extra: str = "") -> list[str]:
        return sorted(await ids(client, service, f"q={quote(expr)}{extra}"))

    assert await q("temperature>20") == ["Room2", "Room3"]
    assert await q("temperature==18..22") == ["Room1", "Room2"]
    assert await q("temperature==18,30") == ["Room1", "Room3"]
    assert await q("temperature!=18;type==Room".replace(";type==Room", "")) == ["Room2", "Room3"]
    assert await q("name==hall") == ["Room3"]
    assert await q("name=='room 1'") == ["Room1"]
    assert await q("name~=^room") == ["Room1", "Room2"]
    assert await q("speed") == ["Car1"]
    assert await q("!speed") == ["Room1", "Room2", "Room3"]
    assert await q("temperature>19;temperature<25") == ["Room2"]
    assert await q("lastSeen>2026-01-01T00:00:00Z") == ["Room1", "Room2", "Room3"]
    assert await q("refBuilding==Building1") == ["Room1", "Room2", "Room3"]
    mq = await ids(client, service, "mq=" + quote("temperature.accuracy>0.15"))
    assert sorted(mq) == ["Room2", "Room3"]
    bad = await client.get("/v2/entities?q=" + quote("temperature=="), headers=v2(service))
    await error(bad, 400, "BadRequest")


async def test_geo_query(client: Client, service: str) -> None:
    await _rooms(client, service)
    near = "georel=near;maxDistance:2000&geometry=point&coords=33.25,130.30"
    assert sorted(await ids(client, service, near)) == ["Room1", "Room2"]
    box = "georel=coveredBy&geometry=box&coords=33.0,130.0;33.5,130.5"
    assert sorted(await ids(client, service, box)) == ["Room1", "Room2"]
    ring = "33.9,130.9;33.9,131.1;34.1,131.1;34.1,130.9;33.9,130.9"
    poly = "georel=intersects&geometry=polygon&coords=" + ring
    assert await ids(client, service, poly) == ["Room3"]
    bad = await client.get("/v2/entities?georel=near&geometry=point", headers=v2(service))
    await error(bad, 400, "BadRequest")


async def test_options_and_count(client: Client, service: str) -> None:
    await _rooms(client, service)
    resp = await client.get(
        "/v2/entities?type=Room&options=count&limit=1&orderBy=id", headers=v2(service)
    )
    assert resp.status == 200
    assert resp.headers["Fiware-Total-Count"] == "3"
    assert len(await resp.json()) == 1
    kv = await get_v2(
        client, service, "/v2/entities?type=Room&options=keyValues&attrs=level&orderBy=id"
    )
    assert kv[0] == {"id": "Room1", "type": "Room", "level": 3}
    values = await get_v2(client, service, "/v2/entities?type=Room&options=values&attrs=level")
    assert values == [[3], [3], [3]]
    unique = await get_v2(client, service, "/v2/entities?type=Room&options=unique&attrs=level")
    assert unique == [[3]]
    bad = await client.get("/v2/entities?options=nonsense", headers=v2(service))
    await error(bad, 400, "BadRequest")
