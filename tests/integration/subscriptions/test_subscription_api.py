"""The Subscription API (§5.8) over real HTTP against PostgreSQL: create, retrieve, query, update,
delete, one member per test, each in a tenant of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.subscriptions.support import (
    CONTEXT,
    CORE,
    ENDPOINT,
    EX,
    LINK,
    SUBS,
    Client,
    create,
    hdr,
    host_context,
    ld,
    problem,
    retrieve,
    subscription,
)


def future(hours: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def ctx_url(client: Client, tenant: str) -> str:
    return await host_context(client, tenant)


async def round_trip(client: Client, tenant: str, ctx_url: str, **members: Any) -> Any:
    """Create with the members (Link @context), read back in the same terms."""
    body = subscription(**members)
    body.pop("@context")
    sid = await create(client, tenant, body, Link=LINK.format(ctx_url))
    return await retrieve(client, tenant, sid, Link=LINK.format(ctx_url))


async def test_create_and_retrieve(client: Client, tenant: str, ctx_url: str) -> None:
    sid = await create(client, tenant, subscription(id="urn:ngsi-ld:Subscription:one"))
    assert sid == "urn:ngsi-ld:Subscription:one"
    got = await retrieve(client, tenant, sid, Link=LINK.format(ctx_url))
    assert got == {
        "id": sid,
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notificationTrigger": ["attributeCreated", "attributeUpdated"],
        "notification": {"endpoint": {"uri": ENDPOINT}},
        "jsonldContext": got["jsonldContext"],
        "status": "active",
        "@context": ctx_url,
    }


async def test_generated_id_and_conflict(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    assert sid.startswith("urn:ngsi-ld:Subscription:")
    resp = await client.post(SUBS, json=subscription(id=sid), headers=ld(tenant))
    await problem(resp, 409, "AlreadyExists")


async def test_names_follow_the_readers_context(client: Client, tenant: str, ctx_url: str) -> None:
    got = await round_trip(
        client, tenant, ctx_url, watchedAttributes=["capacity"], entities=[{"type": "Tower"}]
    )
    assert got["watchedAttributes"] == ["capacity"]
    plain = await retrieve(client, tenant, got["id"])
    assert plain["entities"] == [{"type": EX + "Tower"}]
    assert plain["watchedAttributes"] == [EX + "capacity"]
    assert plain["@context"] == CORE


async def test_entities_id_pattern_and_type_selection(
    client: Client, tenant: str, ctx_url: str
) -> None:
    selectors = [
        {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter"},
        {"idPattern": "^urn:ngsi-ld:Tower:.*", "type": "(Shelter;Tower)|Tower"},
    ]
    got = await round_trip(client, tenant, ctx_url, entities=selectors)
    assert got["entities"] == [
        {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter"},
        {"idPattern": "^urn:ngsi-ld:Tower:.*", "type": "(Shelter;Tower)|Tower"},
    ]


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("subscriptionName", "避難所の空き"),
        ("description", "free places of Saga City shelters"),
        ("notificationTrigger", ["entityCreated", "attributeDeleted"]),
        ("timeInterval", 60),
        ("q", "capacity>10;name==%22A%22"),
        ("csf", "endpoint==%22x%22"),
        ("scopeQ", "/Saga/#"),
        ("lang", "ja,en;q=0.5"),
        ("datasetId", ["urn:ngsi-ld:Dataset:a", "@none"]),
        ("throttling", 2.5),
    ],
)
async def test_member_round_trip(
    client: Client, tenant: str, ctx_url: str, member: str, value: Any
) -> None:
    got = await round_trip(client, tenant, ctx_url, **{member: value})
    assert got[member] == value


async def test_geoq(client: Client, tenant: str, ctx_url: str) -> None:
    geo = {
        "georel": "near;maxDistance==2000",
        "geometry": "Point",
        "coordinates": [130.2975, 33.2635],
        "geoproperty": "capacity",
    }
    got = await round_trip(client, tenant, ctx_url, geoQ=geo)
    assert got["geoQ"] == geo
    plain = await retrieve(client, tenant, got["id"])
    assert plain["geoQ"]["geoproperty"] == EX + "capacity"


async def test_is_active_false_is_paused(client: Client, tenant: str, ctx_url: str) -> None:
    got = await round_trip(client, tenant, ctx_url, isActive=False)
    assert (got["isActive"], got["status"]) == (False, "paused")


async def test_expires_at(client: Client, tenant: str, ctx_url: str) -> None:
    when = future()
    got = await round_trip(client, tenant, ctx_url, expiresAt=when)
    assert (got["expiresAt"], got["status"]) == (when, "active")


async def test_notification_members(client: Client, tenant: str, ctx_url: str) -> None:
    notification = {
        "attributes": ["capacity", "name"],
        "sysAttrs": True,
        "format": "concise",
        "showChanges": True,
        "join": "inline",
        "joinLevel": 2,
        "endpoint": {
            "uri": ENDPOINT,
            "accept": "application/ld+json",
            "timeout": 1500,
            "cooldown": 2000,
            "receiverInfo": [{"key": "Authorization", "value": "Bearer abc"}],
            "notifierInfo": [{"key": "MQTT-Version", "value": "mqtt5.0"}],
        },
    }
    got = await round_trip(client, tenant, ctx_url, notification=notification)
    assert got["notification"] == notification
    plain = await retrieve(client, tenant, got["id"])
    # default-context names compact back to their term with the core @vocab
    assert plain["notification"]["attributes"] == [EX + "capacity", "name"]


async def test_pick_and_omit(client: Client, tenant: str, ctx_url: str) -> None:
    picked = {"pick": ["id", "capacity", "locatedAt{name}"], "endpoint": {"uri": ENDPOINT}}
    assert (await round_trip(client, tenant, ctx_url, notification=picked))["notification"][
        "pick"
    ] == picked["pick"]
    omitted = {"omit": ["type"], "format": "keyValues", "endpoint": {"uri": ENDPOINT}}
    got = await round_trip(client, tenant, ctx_url, notification=omitted)
    assert got["notification"]["omit"] == ["type"]


async def test_mqtt_endpoint_is_stored(client: Client, tenant: str, ctx_url: str) -> None:
    mqtt = {"endpoint": {"uri": "mqtt://127.0.0.1:1883/saga/shelters"}}
    got = await round_trip(client, tenant, ctx_url, notification=mqtt)
    assert got["notification"]["endpoint"]["uri"] == "mqtt://127.0.0.1:1883/saga/shelters"


async def test_json_ld_context_member(client: Client, tenant: str, ctx_url: str) -> None:
    got = await round_trip(client, tenant, ctx_url, jsonldContext=CORE)
    assert got["jsonldContext"] == CORE


async def test_json_ld_context_of_the_request(client: Client, tenant: str, ctx_url: str) -> None:
    """A single @context URL is what notifications carry; an inline or multi-item @context
    becomes an ImplicitlyCreated context (§5.13) whose URL they carry instead."""
    got = await round_trip(client, tenant, ctx_url)
    assert got["jsonldContext"] == ctx_url
    implicit = await retrieve(client, tenant, await create(client, tenant, subscription()))
    url = implicit["jsonldContext"]
    assert "/ngsi-ld/v1/jsonldContexts/" in url
    local_id = url.rsplit("/", 1)[1]
    resp = await client.get(f"/ngsi-ld/v1/jsonldContexts/{local_id}", params={"details": "true"})
    info = await resp.json()
    assert (resp.status, info["kind"]) == (200, "ImplicitlyCreated"), info
    served = await client.get(f"/ngsi-ld/v1/jsonldContexts/{local_id}")
    assert (await served.json())["@context"] == CONTEXT
    again = await retrieve(client, tenant, await create(client, tenant, subscription()))
    assert again["jsonldContext"] == url  # the same @context, the same implicit entry


async def test_no_context_means_the_core(client: Client, tenant: str) -> None:
    body = subscription(entities=[{"type": "https://example.org/ns#Shelter"}])
    body.pop("@context")
    got = await retrieve(client, tenant, await create(client, tenant, body))
    assert got["jsonldContext"] == CORE


async def test_unavailable_json_ld_context(client: Client, tenant: str) -> None:
    missing = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"
    resp = await client.post(
        SUBS,
        json=subscription(jsonldContext=missing),
        headers=ld(tenant),
    )
    await problem(resp, 504, "LdContextNotAvailable")
    # nothing was written: not even the tenant exists
    listing = await client.get(SUBS, headers=hdr(tenant))
    await problem(listing, 404, "NonexistentTenant")


async def test_read_only_members_are_ignored(client: Client, tenant: str) -> None:
    body = subscription(status="expired")
    body["notification"]["timesSent"] = 42
    got = await retrieve(client, tenant, await create(client, tenant, body))
    assert got["status"] == "active"
    assert "timesSent" not in got["notification"]


async def test_sys_attrs(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    plain = await retrieve(client, tenant, sid)
    assert "createdAt" not in plain
    got = await retrieve(client, tenant, sid, "?options=sysAttrs")
    assert got["createdAt"] == got["modifiedAt"]
    datetime.fromisoformat(got["createdAt"].replace("Z", "+00:00"))


async def test_json_with_link_and_prefer(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    resp = await client.get(
        f"{SUBS}/{sid}", headers={"NGSILD-Tenant": tenant, "Prefer": 'NGSI-LD="1.0";q=0.1'}
    )
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Link"] == LINK.format(CORE)
    assert resp.headers["Preference-Applied"] == "ngsi-ld=1.0"
    assert "@context" not in await resp.json()


async def test_retrieve_errors(client: Client, tenant: str) -> None:
    await create(client, tenant, subscription())  # the tenant exists
    await problem(
        await client.get(f"{SUBS}/InvalidUri", headers=hdr(tenant)), 400, "BadRequestData"
    )
    unknown = f"{SUBS}/urn:ngsi-ld:Subscription:unknown"
    await problem(await client.get(unknown, headers=hdr(tenant)), 404, "ResourceNotFound")
    geo = await client.get(unknown, headers={"Accept": "application/geo+json"})
    await problem(geo, 406, "NotAcceptable")
    other = await client.get(unknown, headers={"NGSILD-Tenant": "test-nowhere-subs"})
    await problem(other, 404, "NonexistentTenant")


async def test_subscriptions_belong_to_their_tenant(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    other = tenant + "-other"
    await create(client, other, subscription())
    resp = await client.get(f"{SUBS}/{sid}", headers=hdr(other))
    await problem(resp, 404, "ResourceNotFound")


async def test_query_pages_and_count(client: Client, tenant: str) -> None:
    ids = [await create(client, tenant, subscription(subscriptionName=f"s{n}")) for n in range(3)]
    resp = await client.get(
        SUBS,
        params={"limit": "1", "offset": "1", "count": "true"},
        headers={"NGSILD-Tenant": tenant, "Accept": "application/ld+json"},
    )
    assert resp.status == 200
    page = await resp.json()
    assert [s["id"] for s in page] == ids[1:2]
    assert page[0]["@context"] == CORE
    assert resp.headers["NGSILD-Results-Count"] == "3"
    assert sorted(resp.headers.getall("Link")) == [
        f'<{SUBS}?count=true&limit=1&offset=0>; rel="prev"; type="application/ld+json"',
        f'<{SUBS}?count=true&limit=1&offset=2>; rel="next"; type="application/ld+json"',
    ]
    everything = await client.get(SUBS, headers=hdr(tenant))
    assert [s["id"] for s in await everything.json()] == ids


@pytest.mark.parametrize(
    "query", ["?limit=x", "?limit=100000", "?invalidParams=invalidValue", "?options=keyValues"]
)
async def test_query_bad_parameters(client: Client, tenant: str, query: str) -> None:
    resp = await client.get(SUBS + query, headers=hdr(tenant))
    assert resp.status == 400
    assert (await resp.json())["type"].endswith(("BadRequestData", "InvalidRequest"))


async def test_delete(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    resp = await client.delete(f"{SUBS}/{sid}", headers=hdr(tenant))
    assert resp.status == 204
    await problem(await client.get(f"{SUBS}/{sid}", headers=hdr(tenant)), 404, "ResourceNotFound")
    again = await client.delete(f"{SUBS}/{sid}", headers=hdr(tenant))
    await problem(again, 404, "ResourceNotFound")
    await problem(
        await client.delete(f"{SUBS}/InvalidUri", headers=hdr(tenant)), 400, "BadRequestData"
    )
    assert (await client.delete(f"{SUBS}/", headers=hdr(tenant))).status == 405


async def test_unsupported_media_type(client: Client, tenant: str) -> None:
    resp = await client.post(SUBS, data=b"<x/>", headers={"Content-Type": "application/xml"})
    await problem(resp, 415, "UnsupportedMediaType")


async def test_create_with_unknown_parameter(client: Client, tenant: str) -> None:
    resp = await client.post(
        SUBS + "?invalidParams=invalidValue",
        json=subscription(),
        headers=ld(tenant),
    )
    await problem(resp, 400, "InvalidRequest")
