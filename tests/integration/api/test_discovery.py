"""Discovery of entity types and attributes (§5.7.5-5.7.10) over HTTP, one tenant per test."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EX = "https://example.org/ns#"
CTX = {"ex": EX, "Shelter": "ex:Shelter", "Park": "ex:Park", "capacity": "ex:capacity"}

Client = TestClient  # type: ignore[type-arg]


async def seed(client: Client, tenant: str) -> None:
    entities = [
        {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
         "capacity": {"type": "Property", "value": 200},
         "near": {"type": "Relationship", "object": "urn:ngsi-ld:Park:1"}},
        {"id": "urn:ngsi-ld:Shelter:2", "type": "Shelter",
         "capacity": [{"type": "Property", "value": 10},
                      {"type": "Property", "value": 12, "datasetId": "urn:ngsi-ld:Dataset:b"}]},
        {"id": "urn:ngsi-ld:Park:1", "type": "Park",
         "capacity": {"type": "Property", "value": 5000}},
    ]  # fmt: skip
    resp = await client.post(
        f"{API}/entityOperations/create",
        json=[{**e, "@context": CTX} for e in entities],
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    assert resp.status == 201, await resp.text()


async def get(client: Client, tenant: str, path: str, status: int = 200) -> Any:
    resp = await client.get(
        f"{API}{path}",
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def get_ctx(client: Client, tenant: str, path: str) -> Any:
    resp = await client.post(
        f"{API}/jsonldContexts",
        json={"@context": CTX},
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 201, await resp.text()
    url = str(client.make_url(resp.headers["Location"]))
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"'
    resp = await client.get(f"{API}{path}", headers={"NGSILD-Tenant": tenant, "Link": link})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_type_list_compacts_with_the_request_context(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    body = await get(client, tenant, "/types")
    assert body["type"] == "EntityTypeList"
    assert body["id"].startswith("urn:ngsi-ld:EntityTypeList:")
    assert sorted(body["typeList"]) == [EX + "Park", EX + "Shelter"]
    body = await get_ctx(client, tenant, "/types")
    assert sorted(body["typeList"]) == ["Park", "Shelter"]


async def test_type_details(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    body = await get_ctx(client, tenant, "/types?details=true")
    by_id = {t["id"]: t for t in body}
    assert by_id[EX + "Shelter"]["type"] == "EntityType"
    assert by_id[EX + "Shelter"]["typeName"] == "Shelter"
    assert sorted(by_id[EX + "Shelter"]["attributeNames"]) == ["capacity", "near"]
    assert by_id[EX + "Park"]["attributeNames"] == ["capacity"]


async def test_type_info_counts_entities(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    body = await get_ctx(client, tenant, "/types/Shelter")
    assert body["type"] == "EntityTypeInfo"
    assert body["entityCount"] == 2
    details = {a["attributeName"]: a["attributeTypes"] for a in body["attributeDetails"]}
    assert details == {"capacity": ["Property"], "near": ["Relationship"]}
    expanded = await get(client, tenant, "/types/https%3A%2F%2Fexample.org%2Fns%23Park")
    assert expanded["entityCount"] == 1
    await get(client, tenant, "/types/Nothing", status=404)


async def test_attributes(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    body = await get_ctx(client, tenant, "/attributes")
    assert body["type"] == "AttributeList"
    assert sorted(body["attributeList"]) == ["capacity", "near"]
    details = await get_ctx(client, tenant, "/attributes?details=true")
    by_name = {a["attributeName"]: a for a in details}
    assert sorted(by_name["capacity"]["typeNames"]) == ["Park", "Shelter"]
    one = await get_ctx(client, tenant, "/attributes/capacity")
    assert one["id"] == EX + "capacity"
    assert one["attributeCount"] == 4  # instances, the second dataset included
    assert one["attributeTypes"] == ["Property"]
    assert sorted(one["typeNames"]) == ["Park", "Shelter"]


async def test_unknown_and_entity_members_are_404(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    for name in ("nothing", "id", "type", "createdAt"):
        body = await get(client, tenant, f"/attributes/{name}", status=404)
        assert body["type"] == ERR + "ResourceNotFound"


async def test_undefined_parameters_are_invalid_request(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    for path in ("/types?limit=5", "/types/Shelter?details=true", "/attributes/x?details=true"):
        body = await get(client, tenant, path, status=400)
        assert body["type"] == ERR + "InvalidRequest"


async def test_unknown_tenant_is_404(client: Client) -> None:
    body = await get(client, "no-such-tenant-q1", "/types", status=404)
    assert body["type"] == ERR + "NonexistentTenant"
