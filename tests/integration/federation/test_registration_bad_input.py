"""Bad registrations: every member refused with a 400 naming it, nothing stored; the mode and
operation rules (§4.3.6.3, §5.9.2.4) and the conflicts answered 409."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.federation.support import (
    REGS,
    Client,
    create,
    ld,
    problem,
    registration,
)

_SHELTER = [{"entities": [{"type": "Shelter"}]}]
_ONE = [
    {"entities": [{"id": "urn:saga:shelter:1", "type": "Shelter"}], "propertyNames": ["capacity"]}
]

BAD: list[tuple[dict[str, Any], str]] = [
    ({"type": "Building"}, "type"),
    ({"type": None}, "type"),
    ({"id": "not a uri"}, "id"),
    ({"information": None}, "information"),
    ({"information": []}, "information"),
    ({"information": [{}]}, "information"),
    ({"information": [{"entities": []}]}, "information.entities"),
    ({"information": [{"entities": [{"id": "urn:x:1"}]}]}, "information.entities"),
    ({"information": [{"entities": [{"type": 5}]}]}, "information.entities.type"),
    (
        {"information": [{"entities": [{"type": "Shelter", "id": "nope"}]}]},
        "information.entities.id",
    ),
    ({"information": [{"entities": [{"type": "A", "idPattern": "(a"}]}]}, "idPattern"),
    ({"information": [{"entities": [{"type": "A", "idPattern": "(?=x)"}]}]}, "idPattern"),
    ({"information": [{"entities": [{"type": "A", "color": "red"}]}]}, "information.entities"),
    ({"information": [{"propertyNames": []}]}, "information.propertyNames"),
    ({"information": [{"propertyNames": ["a b"]}]}, "information.propertyNames"),
    ({"information": [{"relationshipNames": [3]}]}, "information.relationshipNames"),
    ({"information": [{"things": ["x"]}]}, "information"),
    ({"endpoint": None}, "endpoint"),
    ({"endpoint": "my.csource.org"}, "endpoint"),
    ({"endpoint": "ftp://my.csource.org/"}, "endpoint"),
    ({"endpoint": "http:///nohost"}, "endpoint"),
    ({"endpoint": 42}, "endpoint"),
    ({"registrationName": ""}, "registrationName"),
    ({"description": 3}, "description"),
    ({"tenant": "no spaces allowed"}, "tenant"),
    ({"observationInterval": {"endAt": "2026-01-01T00:00:00Z"}}, "observationInterval"),
    ({"observationInterval": {"startAt": "yesterday"}}, "observationInterval.startAt"),
    (
        {
            "managementInterval": {
                "startAt": "2026-02-01T00:00:00Z",
                "endAt": "2026-01-01T00:00:00Z",
            }
        },
        "managementInterval",
    ),
    ({"location": {"type": "Point", "coordinates": [200, 0]}}, "location"),
    ({"observationSpace": {"type": "Circle"}}, "observationSpace"),
    ({"operationSpace": "here"}, "operationSpace"),
    ({"expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
    ({"expiresAt": "soon"}, "expiresAt"),
    ({"contextSourceInfo": [{"key": "X", "value": 1}]}, "contextSourceInfo"),
    ({"contextSourceInfo": [{"key": "X"}]}, "contextSourceInfo"),
    ({"contextSourceInfo": [{"key": 5, "value": "v"}]}, "contextSourceInfo"),
    ({"contextSourceInfo": {"key": "X", "value": "v"}}, "contextSourceInfo"),
    ({"scope": "no/leading/slash"}, "scope"),
    ({"mode": "shared"}, "mode"),
    ({"operations": []}, "operations"),
    ({"operations": ["teleport"]}, "operations"),
    ({"refreshRate": "often"}, "refreshRate"),
    ({"management": "yes"}, "management"),
    ({"management": {"cacheDuration": "bogus"}}, "management.cacheDuration"),
    ({"management": {"cooldown": 0}}, "management.cooldown"),
    ({"management": {"timeout": -5}}, "management.timeout"),
    ({"management": {"localOnly": "yes"}}, "management.localOnly"),
    ({"management": {"retries": 3}}, "management"),
    ({"bad name!": 1}, "bad name!"),
    # the rules between members
    ({"mode": "exclusive"}, "exclusive"),  # a type-only group
    (
        {"mode": "exclusive", "information": [{"entities": [{"id": "urn:x:1", "type": "A"}]}]},
        "propertyNames",
    ),
    (
        {
            "mode": "exclusive",
            "information": [
                {"entities": [{"idPattern": "x", "type": "A"}], "propertyNames": ["p"]}
            ],
        },
        "exclusive",
    ),
    ({"mode": "auxiliary", "operations": ["updateEntity"]}, "auxiliary"),
    ({"mode": "auxiliary", "operations": ["redirectionOps"]}, "auxiliary"),
    ({"mode": "auxiliary", "operations": ["createBatch", "queryEntity"]}, "createBatch"),
]


@pytest.mark.parametrize(("members", "named"), BAD)
async def test_bad_member_is_400_naming_it(
    client: Client, tenant: str, members: dict[str, Any], named: str
) -> None:
    await create(client, tenant, registration(id="urn:reg:keep"))  # the tenant exists
    body = {**registration(id="urn:reg:bad"), **members}
    resp = await client.post(REGS, json=body, headers=ld(tenant))
    problem_body = await problem(resp, 400, "BadRequestData")
    assert named in problem_body["detail"]
    resp = await client.get(f"{REGS}/urn:reg:bad", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 404


async def test_auxiliary_with_read_operations_is_accepted(client: Client, tenant: str) -> None:
    await create(client, tenant, registration(mode="auxiliary"))
    await create(client, tenant, registration(mode="auxiliary", operations=["retrieveOps"]))


async def test_not_an_object_and_ld_without_context(client: Client, tenant: str) -> None:
    resp = await client.post(REGS, json=[registration()], headers=ld(tenant))
    await problem(resp, 400, "BadRequestData")
    body = registration()
    body.pop("@context")
    await problem(await client.post(REGS, json=body, headers=ld(tenant)), 400, "BadRequestData")
    resp = await client.post(
        REGS, data=b"{", headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    )
    await problem(resp, 400, "InvalidRequest")


# ----------------------------------------------------------------------------- conflicts


async def test_exclusive_over_exclusive_or_redirect_is_409(client: Client, tenant: str) -> None:
    await create(client, tenant, registration(id="urn:reg:ex", mode="exclusive", information=_ONE))
    for mode in ("exclusive", "redirect"):
        body = registration(id=f"urn:reg:{mode}2", mode=mode, information=_ONE)
        body_ = await problem(
            await client.post(REGS, json=body, headers=ld(tenant)), 409, "AlreadyExists"
        )
        assert "Conflict" in body_["detail"] and "urn:reg:ex" in body_["detail"]
    # other attributes of the same entity, or inclusive sources, are fine
    other = [{"entities": _ONE[0]["entities"], "propertyNames": ["name"]}]
    await create(client, tenant, registration(mode="exclusive", information=other))
    await create(client, tenant, registration(mode="inclusive", information=_ONE))


async def test_exclusive_over_redirect_is_409_redirects_may_overlap(
    client: Client, tenant: str
) -> None:
    await create(client, tenant, registration(mode="redirect", information=_ONE))
    await create(client, tenant, registration(mode="redirect", information=_ONE))
    body = registration(mode="exclusive", information=_ONE)
    await problem(await client.post(REGS, json=body, headers=ld(tenant)), 409, "AlreadyExists")


async def test_update_into_a_conflict_is_409(client: Client, tenant: str) -> None:
    await create(client, tenant, registration(mode="exclusive", information=_ONE))
    other = [{"entities": _ONE[0]["entities"], "propertyNames": ["name"]}]
    rid = await create(client, tenant, registration(mode="exclusive", information=other))
    resp = await client.patch(
        f"{REGS}/{rid}", json={"information": _ONE, "@context": registration()["@context"]},
        headers=ld(tenant),
    )  # fmt: skip
    await problem(resp, 409, "AlreadyExists")


async def _entity(client: Client, tenant: str, **attrs: Any) -> None:
    body = {
        "id": "urn:saga:shelter:1",
        "type": "Shelter",
        **attrs,
        "@context": registration()["@context"],
    }
    resp = await client.post("/ngsi-ld/v1/entities", json=body, headers=ld(tenant))
    assert resp.status == 201, await resp.text()


async def test_exclusive_over_a_local_attribute_is_409(client: Client, tenant: str) -> None:
    await _entity(client, tenant, capacity={"type": "Property", "value": 120})
    body = registration(mode="exclusive", information=_ONE)
    detail = (
        await problem(await client.post(REGS, json=body, headers=ld(tenant)), 409, "AlreadyExists")
    )["detail"]
    assert "urn:saga:shelter:1" in detail and "capacity" in detail
    other = [{"entities": _ONE[0]["entities"], "propertyNames": ["name"]}]
    await create(client, tenant, registration(mode="exclusive", information=other))


async def test_redirect_over_a_local_entity_is_409(client: Client, tenant: str) -> None:
    await _entity(client, tenant)
    body = registration(mode="redirect", information=_ONE)
    await problem(await client.post(REGS, json=body, headers=ld(tenant)), 409, "AlreadyExists")
