"""NGSIv2 entity resources over real HTTP, against PostgreSQL/PostGIS, one Fiware-Service per test.

Expected behaviour follows Orion's documented semantics (FIWARE NGSI v2 specification, Orion
manuals): status codes, error bodies, attribute and metadata rendering.
"""

from __future__ import annotations

from tests.integration.ngsiv2.support import (
    Client,
    create_v2,
    error,
    get_v2,
    ld_headers,
    room,
    v2,
)


async def test_create_then_retrieve_normalized(client: Client, service: str) -> None:
    resp = await client.post("/v2/entities", json=room(1), headers=v2(service))
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == "/v2/entities/Room1?type=Room"
    body = await get_v2(client, service, "/v2/entities/Room1")
    assert body == {
        "id": "Room1",
        "type": "Room",
        "temperature": {
            "type": "Number",
            "value": 23.5,
            "metadata": {
                "TimeInstant": {"type": "DateTime", "value": "2026-12-01T10:00:00.000Z"},
                "accuracy": {"type": "Number", "value": 0.5},
            },
        },
        "name": {"type": "Text", "value": "会議室", "metadata": {}},
        "location": {
            "type": "geo:json",
            "value": {"type": "Point", "coordinates": [130.3, 33.25]},
            "metadata": {},
        },
        "refBuilding": {"type": "Relationship", "value": "Building1", "metadata": {}},
        "lastSeen": {"type": "DateTime", "value": "2026-12-01T09:00:00.000Z", "metadata": {}},
        "level": {"type": "Integer", "value": 3, "metadata": {}},
    }


async def test_v2_entity_reads_back_in_ngsild(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    resp = await client.get("/ngsi-ld/v1/entities/urn:ngsiv:Room1", headers=ld_headers(service))
    assert resp.status == 200, await resp.text()
    ld = await resp.json()
    assert ld["type"] == "Room"
    assert ld["temperature"]["type"] == "Property"
    assert ld["temperature"]["value"] == 23.5
    assert ld["temperature"]["observedAt"] == "2026-12-01T10:00:00.000Z"
    assert ld["temperature"]["accuracy"] == {"type": "Property", "value": 0.5}
    assert ld["location"]["type"] == "GeoProperty"
    assert ld["refBuilding"] == {"type": "Relationship", "object": "urn:ngsiv:Building1"}
    assert ld["lastSeen"]["value"] == {"@type": "DateTime", "@value": "2026-12-01T09:00:00.000Z"}


async def test_ngsild_entity_reads_in_v2(client: Client, service: str) -> None:
    ld = {
        "id": "urn:ngsi-ld:Shelter:1",
        "type": "Shelter",
        "capacity": {"type": "Property", "value": 200, "unitCode": "C62"},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:City:saga"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}},
    }
    resp = await client.post("/ngsi-ld/v1/entities", json=ld, headers=ld_headers(service))
    assert resp.status == 201, await resp.text()
    body = await get_v2(client, service, "/v2/entities/urn:ngsi-ld:Shelter:1")
    assert body["capacity"] == {
        "type": "Number",
        "value": 200,
        "metadata": {"unitCode": {"type": "Text", "value": "C62"}},
    }
    assert body["owner"]["type"] == "Relationship"
    assert body["owner"]["value"] == "urn:ngsi-ld:City:saga"
    assert body["location"]["type"] == "geo:json"


async def test_key_values_values_and_attrs(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    kv = await get_v2(
        client, service, "/v2/entities/Room1?options=keyValues&attrs=temperature,name"
    )
    assert kv == {"id": "Room1", "type": "Room", "temperature": 23.5, "name": "会議室"}
    values = await get_v2(
        client, service, "/v2/entities/Room1?options=values&attrs=name,temperature"
    )
    assert values == ["会議室", 23.5]
    attrs = await get_v2(client, service, "/v2/entities/Room1/attrs?options=keyValues&attrs=level")
    assert attrs == {"level": 3}
    dated = await get_v2(client, service, "/v2/entities/Room1?attrs=dateCreated,level")
    assert dated["dateCreated"]["type"] == "DateTime"
    assert list(dated) == ["id", "type", "dateCreated", "level"]
    meta = await get_v2(client, service, "/v2/entities/Room1/attrs/temperature?metadata=accuracy")
    assert meta["metadata"] == {"accuracy": {"type": "Number", "value": 0.5}}


async def test_create_with_key_values_and_upsert(client: Client, service: str) -> None:
    body = {"id": "Car1", "type": "Car", "speed": 10, "brand": "Mazda"}
    resp = await client.post("/v2/entities?options=keyValues", json=body, headers=v2(service))
    assert resp.status == 201, await resp.text()
    again = await client.post("/v2/entities?options=keyValues", json=body, headers=v2(service))
    await error(again, 422, "Unprocessable", "Already Exists")
    upsert = {"id": "Car1", "type": "Car", "speed": 20}
    resp = await client.post(
        "/v2/entities?options=keyValues,upsert", json=upsert, headers=v2(service)
    )
    assert resp.status == 204, await resp.text()
    kv = await get_v2(client, service, "/v2/entities/Car1?options=keyValues")
    assert kv == {"id": "Car1", "type": "Car", "speed": 20, "brand": "Mazda"}


async def test_attribute_updates(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    patch = {"temperature": {"value": 25}}
    resp = await client.patch("/v2/entities/Room1/attrs", json=patch, headers=v2(service))
    assert resp.status == 204, await resp.text()
    assert (await get_v2(client, service, "/v2/entities/Room1/attrs/temperature/value")) == 25
    missing = await client.patch(
        "/v2/entities/Room1/attrs", json={"pressure": {"value": 1}}, headers=v2(service)
    )
    await error(missing, 422, "Unprocessable", "do not exist: Room1 - [ pressure ]")
    post = {"pressure": {"value": 1013, "type": "Number"}}
    resp = await client.post("/v2/entities/Room1/attrs", json=post, headers=v2(service))
    assert resp.status == 204
    strict = await client.post(
        "/v2/entities/Room1/attrs?options=append", json=post, headers=v2(service)
    )
    await error(strict, 422, "Unprocessable", "already exist")
    resp = await client.delete("/v2/entities/Room1/attrs/pressure", headers=v2(service))
    assert resp.status == 204
    gone = await client.get("/v2/entities/Room1/attrs/pressure", headers=v2(service))
    await error(gone, 404, "NotFound", "The entity does not have such an attribute")
    put = {"only": {"value": "x"}}
    resp = await client.put("/v2/entities/Room1/attrs", json=put, headers=v2(service))
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities/Room1?options=keyValues") == {
        "id": "Room1",
        "type": "Room",
        "only": "x",
    }
    resp = await client.put(
        "/v2/entities/Room1/attrs/only", json={"type": "Text", "value": "y"}, headers=v2(service)
    )
    assert resp.status == 204
    resp = await client.get(
        "/v2/entities/Room1/attrs/only/value", headers={**v2(service), "Accept": "text/plain"}
    )
    assert resp.content_type == "text/plain"
    assert await resp.text() == "y"
    assert await get_v2(client, service, "/v2/entities/Room1/attrs/only/value") == "y"


async def test_text_plain_values(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    headers = {**v2(service), "Content-Type": "text/plain"}
    for raw, expected in (("27.5", 27.5), ("true", True), ('"quoted"', "quoted"), ("bare", "bare")):
        resp = await client.put(
            "/v2/entities/Room1/attrs/temperature/value", data=raw, headers=headers
        )
        assert resp.status == 204, await resp.text()
        resp = await client.get(
            "/v2/entities/Room1/attrs/temperature/value",
            headers={**v2(service), "Accept": "text/plain"},
        )
        assert resp.content_type == "text/plain"
        text = await resp.text()
        assert text == (expected if isinstance(expected, str) else str(expected).lower())
    attr = await get_v2(client, service, "/v2/entities/Room1/attrs/temperature")
    assert attr["metadata"]["accuracy"] == {"type": "Number", "value": 0.5}  # kept
    resp = await client.put(
        "/v2/entities/Room1/attrs/temperature/value", json={"a": [1, 2]}, headers=v2(service)
    )
    assert resp.status == 204
    assert await get_v2(client, service, "/v2/entities/Room1/attrs/temperature/value") == {
        "a": [1, 2]
    }


async def test_delete_entity_and_errors(client: Client, service: str) -> None:
    await create_v2(client, service, room(1))
    wrong_type = await client.get("/v2/entities/Room1?type=Car", headers=v2(service))
    await error(
        wrong_type, 404, "NotFound", "The requested entity has not been found. Check type and id"
    )
    resp = await client.delete("/v2/entities/Room1", headers=v2(service))
    assert resp.status == 204
    again = await client.delete("/v2/entities/Room1", headers=v2(service))
    await error(again, 404, "NotFound")
    bad = await client.post("/v2/entities", json={"id": "Bad<id", "type": "T"}, headers=v2(service))
    await error(bad, 400, "BadRequest", "Invalid characters")
    bad_value = await client.post(
        "/v2/entities",
        json={"id": "E1", "type": "T", "a": {"value": "x(y)"}},
        headers=v2(service),
    )
    await error(bad_value, 400, "BadRequest", "Invalid characters in attribute value")
    unrestricted = {"id": "E1", "type": "T", "a": {"type": "TextUnrestricted", "value": "x(y)"}}
    resp = await client.post("/v2/entities", json=unrestricted, headers=v2(service))
    assert resp.status == 201
    not_json = await client.post(
        "/v2/entities", data="{", headers={**v2(service), "Content-Type": "text/plain"}
    )
    await error(not_json, 415, "UnsupportedMediaType")
    garbage = await client.post(
        "/v2/entities", data="{", headers={**v2(service), "Content-Type": "application/json"}
    )
    await error(garbage, 400, "BadRequest")
    null = await client.post(
        "/v2/entities",
        json={"id": "E2", "a": {"type": "Number", "value": None}},
        headers=v2(service),
    )
    assert null.status == 201, await null.text()
    assert (await get_v2(client, service, "/v2/entities/E2/attrs/a"))["type"] == "None"
    assert await get_v2(client, service, "/v2/entities/E2?options=keyValues") == {
        "id": "E2", "type": "Thing", "a": None,
    }  # fmt: skip
    route = await client.get("/v2/nothing", headers=v2(service))
    await error(route, 404, "NotFound")


async def test_service_path_is_scope(client: Client, service: str) -> None:
    for n, path in ((1, "/saga/north"), (2, "/saga/south"), (3, "/tosu")):
        resp = await client.post(
            "/v2/entities", json=room(n), headers={**v2(service), "Fiware-ServicePath": path}
        )
        assert resp.status == 201, await resp.text()

    async def ids(path: str) -> list[str]:
        resp = await client.get(
            "/v2/entities?attrs=id&orderBy=id", headers={**v2(service), "Fiware-ServicePath": path}
        )
        assert resp.status == 200, await resp.text()
        return [e["id"] for e in await resp.json()]

    assert await ids("/saga/#") == ["Room1", "Room2"]
    assert await ids("/saga/north") == ["Room1"]
    assert await ids("/saga") == []
    assert await ids("/saga/south,/tosu") == ["Room2", "Room3"]
    assert await ids("/#") == ["Room1", "Room2", "Room3"]
    ld = await client.get(
        "/ngsi-ld/v1/entities?type=Room&scopeQ=/saga/%23", headers=ld_headers(service)
    )
    assert sorted(e["id"] for e in await ld.json()) == ["urn:ngsiv:Room1", "urn:ngsiv:Room2"]
    hidden = await client.get(
        "/v2/entities/Room3", headers={**v2(service), "Fiware-ServicePath": "/saga/#"}
    )
    await error(hidden, 404, "NotFound")


async def test_unknown_service_lists_nothing(client: Client, service: str) -> None:
    resp = await client.get("/v2/entities", headers=v2(service))
    assert resp.status == 200
    assert await resp.json() == []
    missing = await client.get("/v2/entities/Room1", headers=v2(service))
    await error(missing, 404, "NotFound")
