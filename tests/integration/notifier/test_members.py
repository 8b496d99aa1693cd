"""Each member of a Subscription, seen from the receiving end: what gets notified, and how.

One broker (API + relay + notifier, a Tansu of its own) serves the module; every test has its
own tenant and receiver. "Nothing else was notified" is checked once the notifier has handled
every event of the tenant and delivered what they matched (``settled``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.events.support import poll
from tests.integration.notifier.support import (
    API,
    Client,
    Receiver,
    hdr,
    settled,
    shelter,
    stack,
    subscribe,
    write,
)

S1 = "urn:ngsi-ld:Shelter:1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
EX = "https://example.org/ns#"
NULL = "urn:ngsi-ld:null"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[Client]:
    async with stack() as c:
        yield c


def to(sink: Receiver, name: str, **notification: Any) -> dict[str, Any]:
    endpoint = {"uri": sink.to(name), **notification.pop("endpoint", {})}
    return {**notification, "endpoint": endpoint}


def value(v: Any, **more: Any) -> dict[str, Any]:
    return {"type": "Property", "value": v, **more}


async def patch(client: Client, tenant: str, attrs: dict[str, Any], eid: str = S1) -> None:
    await write(client, "PATCH", f"/entities/{eid}/attrs", tenant, attrs)


async def create(client: Client, tenant: str, entity: dict[str, Any]) -> None:
    await write(client, "POST", "/entities", tenant, entity, status=201)


def ids(notifications: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for n in notifications for e in n["data"]]


async def test_entity_selectors(client: Client, tenant: str, sink: Receiver) -> None:
    selectors: dict[str, Any] = {
        "types": [{"type": "(Shelter;Tower)|Depot"}],
        "id": [{"type": "Shelter", "id": S1}],
        "pattern": [{"type": "Shelter", "idPattern": "^urn:ngsi-ld:Shelter:2"}],
    }
    for name, entities in selectors.items():
        await subscribe(client, tenant, {"entities": entities, "notification": to(sink, name)})
    await create(client, tenant, shelter(1))
    await create(client, tenant, shelter(2))
    await create(client, tenant, {**shelter(3), "type": ["Shelter", "Tower"]})
    await create(client, tenant, {**shelter(4), "id": "urn:ngsi-ld:Depot:1", "type": "Depot"})
    await settled(client, tenant)
    assert sorted(ids(sink.of("types"))) == ["urn:ngsi-ld:Depot:1", "urn:ngsi-ld:Shelter:3"]
    assert ids(sink.of("id")) == [S1]
    assert ids(sink.of("pattern")) == ["urn:ngsi-ld:Shelter:2"]


async def test_watched_attributes(client: Client, tenant: str, sink: Receiver) -> None:
    await create(client, tenant, shelter(1))
    await subscribe(
        client, tenant, {"watchedAttributes": ["capacity"], "notification": to(sink, "w")}
    )
    await patch(client, tenant, {"name": value("嘉瀬小学校")})
    await patch(client, tenant, {"capacity": value(80)})
    await settled(client, tenant)
    got = sink.of("w")
    assert [n["data"][0]["capacity"]["value"] for n in got] == [80]


async def test_notification_triggers(client: Client, tenant: str, sink: Receiver) -> None:
    for trigger in (
        "entityCreated",
        "attributeCreated",
        "attributeUpdated",
        "attributeDeleted",
        "entityDeleted",
        "entityUpdated",
    ):
        await subscribe(
            client,
            tenant,
            {
                "entities": [{"type": "Shelter"}],
                "notificationTrigger": [trigger],
                "notification": to(sink, trigger),
            },
        )
    await create(client, tenant, shelter(1))  # entity created
    await write(client, "POST", f"/entities/{S1}/attrs", tenant, {"name": value("A")})  # created
    await patch(client, tenant, {"capacity": value(50)})  # updated
    await write(client, "DELETE", f"/entities/{S1}/attrs/name", tenant)  # attribute deleted
    await write(client, "DELETE", f"/entities/{S1}", tenant)  # entity deleted
    await settled(client, tenant)
    reasons = {
        t: [n["triggerReason"] for n in sink.of(t)]
        for t in (
            "entityCreated",
            "attributeCreated",
            "attributeUpdated",
            "attributeDeleted",
            "entityDeleted",
            "entityUpdated",
        )
    }
    assert reasons == {
        "entityCreated": ["entityCreated"],
        # a new entity creates its attributes, a deleted one deletes them
        "attributeCreated": ["attributeCreated", "attributeCreated"],
        "attributeUpdated": ["attributeUpdated"],
        "attributeDeleted": ["attributeDeleted", "attributeDeleted"],
        "entityDeleted": ["entityDeleted"],
        "entityUpdated": ["entityUpdated"] * 3,
    }
    deleted_attr = sink.of("attributeDeleted")[0]["data"][0]
    assert deleted_attr["name"] == {"type": "Property", "value": NULL}
    assert deleted_attr["capacity"]["value"] == 50
    gone = sink.of("entityDeleted")[0]["data"][0]
    assert set(gone) == {"id", "type", "deletedAt"} and gone["id"] == S1


async def test_default_triggers(client: Client, tenant: str, sink: Receiver) -> None:
    await subscribe(
        client, tenant, {"entities": [{"type": "Shelter"}], "notification": to(sink, "d")}
    )
    await create(client, tenant, shelter(1))
    await patch(client, tenant, {"capacity": value(1)})
    await write(client, "DELETE", f"/entities/{S1}/attrs/capacity", tenant)
    await write(client, "DELETE", f"/entities/{S1}", tenant)
    await settled(client, tenant)
    assert [n["triggerReason"] for n in sink.of("d")] == ["attributeCreated", "attributeUpdated"]


async def test_q_geoq_and_scopeq(client: Client, tenant: str, sink: Receiver) -> None:
    saga = {"type": "Point", "coordinates": [130.2988, 33.2494]}
    await create(
        client,
        tenant,
        {
            **shelter(1, 10),
            "location": {"type": "GeoProperty", "value": saga},
            "scope": "/Saga/Kase",
        },
    )
    near = {
        "georel": "near;maxDistance==1000",
        "geometry": "Point",
        "coordinates": [130.2975, 33.2500],
    }
    far = {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [135.0, 35.0]}
    members = {
        "q": {"q": "capacity>50"},
        "near": {"geoQ": near},
        "far": {"geoQ": far},
        "scope": {"scopeQ": "/Saga/#"},
        "other-scope": {"scopeQ": "/Ogi"},
    }
    for name, member in members.items():
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], **member, "notification": to(sink, name)},
        )
    await patch(client, tenant, {"capacity": value(20)})
    await patch(client, tenant, {"capacity": value(60)})
    await settled(client, tenant)
    values = {n: [x["data"][0]["capacity"]["value"] for x in sink.of(n)] for n in members}
    assert values == {"q": [60], "near": [20, 60], "far": [], "scope": [20, 60], "other-scope": []}


async def test_formats_attributes_and_system_members(
    client: Client, tenant: str, sink: Receiver
) -> None:
    await create(client, tenant, shelter(1, name=value("A", unitCode="C62")))
    views = {
        "keyValues": {"format": "keyValues"},
        "concise": {"format": "concise"},
        "attributes": {"attributes": ["name"]},
        "sysAttrs": {"sysAttrs": True},
        "pick": {"pick": ["id", "capacity"]},
        "omit": {"omit": ["type", "name"], "format": "keyValues"},
    }
    for name, member in views.items():
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": to(sink, name, **member)},
        )
    await patch(client, tenant, {"capacity": value(7)})
    await settled(client, tenant)
    data = {name: sink.of(name)[0]["data"][0] for name in views}
    assert data["keyValues"] == {"id": S1, "type": "Shelter", "capacity": 7, "name": "A"}
    assert data["concise"] == {
        "id": S1,
        "type": "Shelter",
        "capacity": 7,
        "name": {"value": "A", "unitCode": "C62"},
    }
    assert set(data["attributes"]) == {"id", "type", "name"}
    assert {"createdAt", "modifiedAt"} <= set(data["sysAttrs"])
    assert "createdAt" in data["sysAttrs"]["capacity"]
    assert data["pick"] == {"id": S1, "capacity": {"type": "Property", "value": 7}}
    assert data["omit"] == {"id": S1, "capacity": 7}


async def test_lang_and_dataset_id(client: Client, tenant: str, sink: Receiver) -> None:
    names = {"type": "LanguageProperty", "languageMap": {"ja": "嘉瀬", "en": "Kase"}}
    await create(
        client,
        tenant,
        shelter(1, name=names, level=[value(1), value(2, datasetId="urn:ngsi-ld:Dataset:b")]),
    )
    await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "lang": "en", "notification": to(sink, "lang")},
    )
    await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Shelter"}],
            "datasetId": ["urn:ngsi-ld:Dataset:b"],
            "notification": to(sink, "ds"),
        },
    )
    await patch(client, tenant, {"capacity": value(3)})
    await settled(client, tenant)
    lang = sink.of("lang")[0]["data"][0]
    assert lang["name"] == {"type": "Property", "value": "Kase", "lang": "en"}
    ds = sink.of("ds")[0]["data"][0]
    assert "capacity" not in ds
    assert ds["level"] == {"type": "Property", "value": 2, "datasetId": "urn:ngsi-ld:Dataset:b"}


async def test_accept_json_ld_and_geojson(client: Client, tenant: str, sink: Receiver) -> None:
    point = {"type": "Point", "coordinates": [130.3, 33.25]}
    await create(client, tenant, shelter(1, location={"type": "GeoProperty", "value": point}))
    for name, accept in (("ld", "application/ld+json"), ("geo", "application/geo+json")):
        await subscribe(
            client,
            tenant,
            {
                "entities": [{"type": "Shelter"}],
                "notification": to(sink, name, endpoint={"accept": accept}),
            },
        )
    await patch(client, tenant, {"capacity": value(5)})
    await settled(client, tenant)
    ld = next(r for r in sink.received if r.query["to"] == "ld")
    assert ld.headers["Content-Type"] == "application/ld+json" and "Link" not in ld.headers
    assert ld.body["data"][0]["@context"] == CORE
    geo = next(r for r in sink.received if r.query["to"] == "geo")
    assert geo.headers["Content-Type"] == "application/geo+json"
    collection = geo.body["data"]
    assert collection["type"] == "FeatureCollection"
    assert collection["features"][0]["geometry"] == point
    assert collection["features"][0]["properties"]["capacity"]["value"] == 5


async def test_receiver_info_and_tenant_header(client: Client, tenant: str, sink: Receiver) -> None:
    info = [{"key": "Authorization", "value": "Bearer saga"}, {"key": "X-City", "value": "412015"}]
    await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Shelter"}],
            "notification": to(sink, "r", endpoint={"receiverInfo": info}),
        },
    )
    await create(client, tenant, shelter(1))
    got = await sink.wait_for(1)
    assert got[0].headers["Authorization"] == "Bearer saga"
    assert got[0].headers["X-City"] == "412015"
    assert got[0].headers["NGSILD-Tenant"] == tenant


async def test_json_ld_context_compacts(client: Client, tenant: str, sink: Receiver) -> None:
    context = {"ex": EX, "Shelter": "ex:Shelter", "capacity": "ex:capacity"}
    body = {
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notification": to(sink, "implicit"),
        "@context": context,
    }
    sent = await client.post(
        f"{API}/subscriptions",
        json=body,
        headers=hdr(tenant, **{"Content-Type": "application/ld+json"}),
    )
    assert sent.status == 201, await sent.text()
    await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": EX + "Shelter"}],
            "jsonldContext": CORE,
            "notification": to(sink, "core"),
        },
    )
    entity = {"id": S1, "type": EX + "Shelter", EX + "capacity": value(1)}
    await create(client, tenant, entity)
    await settled(client, tenant)
    mine = next(r for r in sink.received if r.query["to"] == "implicit")
    assert mine.body["data"][0]["type"] == "Shelter"
    assert mine.body["data"][0]["capacity"]["value"] == 1
    assert "/ngsi-ld/v1/jsonldContexts/" in mine.headers["Link"]
    core = next(r for r in sink.received if r.query["to"] == "core")
    assert core.body["data"][0]["type"] == EX + "Shelter"
    assert f"<{CORE}>" in core.headers["Link"]


async def test_show_changes(client: Client, tenant: str, sink: Receiver) -> None:
    await create(
        client,
        tenant,
        shelter(1, name=value("A"), refArea={"type": "Relationship", "object": "urn:a:1"}),
    )
    await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "notification": to(sink, "c", showChanges=True)},
    )
    await patch(
        client,
        tenant,
        {"capacity": value(99), "refArea": {"type": "Relationship", "object": "urn:a:2"}},
    )
    got = (await sink.wait_of("c", 1))[0]["data"][0]
    assert got["capacity"] == {"type": "Property", "value": 99, "previousValue": 100}
    assert got["refArea"] == {
        "type": "Relationship",
        "object": "urn:a:2",
        "previousObject": "urn:a:1",
    }
    assert got["name"] == {"type": "Property", "value": "A"}


async def test_is_active_and_expires_at(client: Client, tenant: str, sink: Receiver) -> None:
    await create(client, tenant, shelter(1))
    sid = await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "isActive": False, "notification": to(sink, "a")},
    )
    await patch(client, tenant, {"capacity": value(1)})
    await settled(client, tenant)
    resume = await client.patch(
        f"{API}/subscriptions/{sid}", json={"isActive": True}, headers=hdr(tenant)
    )
    assert resume.status == 204
    await patch(client, tenant, {"capacity": value(2)})
    await settled(client, tenant)
    assert [n["data"][0]["capacity"]["value"] for n in sink.of("a")] == [2]


async def test_throttling(client: Client, tenant: str, sink: Receiver) -> None:
    await create(client, tenant, shelter(1))
    await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "throttling": 60, "notification": to(sink, "t")},
    )
    for capacity in (1, 2, 3):
        await patch(client, tenant, {"capacity": value(capacity)})
    await settled(client, tenant)
    assert [n["data"][0]["capacity"]["value"] for n in sink.of("t")] == [1]


async def test_time_interval(client: Client, tenant: str, sink: Receiver) -> None:
    await create(client, tenant, shelter(1))
    await create(client, tenant, shelter(2, 5))
    await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Shelter"}],
            "timeInterval": 1,
            "q": "capacity>50",
            "notification": to(sink, "p"),
        },
    )
    got = await sink.wait_of("p", 2, within=15)
    for notification in got[:2]:
        assert ids([notification]) == [S1]  # the current state of what matches, each period
        assert "triggerReason" not in notification
    assert len({n["id"] for n in got}) == len(got)


async def test_join(client: Client, tenant: str, sink: Receiver) -> None:
    await create(
        client, tenant, {"id": "urn:ngsi-ld:City:Saga", "type": "City", "name": value("佐賀市")}
    )
    await create(
        client,
        tenant,
        shelter(1, inCity={"type": "Relationship", "object": "urn:ngsi-ld:City:Saga"}),
    )
    for mode in ("inline", "flat"):
        await subscribe(
            client,
            tenant,
            {
                "entities": [{"type": "Shelter"}],
                "notification": to(sink, mode, join=mode, joinLevel=1),
            },
        )
    await patch(client, tenant, {"capacity": value(3)})
    await settled(client, tenant)
    inline = sink.of("inline")[0]["data"]
    assert inline[0]["inCity"]["entity"]["name"]["value"] == "佐賀市"
    assert ids(sink.of("flat")) == [S1, "urn:ngsi-ld:City:Saga"]


async def test_status_is_current_when_read(client: Client, tenant: str, sink: Receiver) -> None:
    sid = await subscribe(
        client, tenant, {"entities": [{"type": "Shelter"}], "notification": to(sink, "s")}
    )
    await create(client, tenant, shelter(1))
    await sink.wait_of("s", 1)
    resp = await client.get(f"{API}/subscriptions/{sid}", headers=hdr(tenant))
    got = (await resp.json())["notification"]
    assert (got["status"], got["timesSent"], got["timesFailed"]) == ("ok", 1, 0)
    assert got["lastNotification"] == got["lastSuccess"]


async def test_an_mqtt_endpoint_is_delivered_to_and_counted(client: Client, tenant: str) -> None:
    """The machine's Mosquitto takes the notification: the subscription's status says so."""
    sid = await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": {"uri": f"mqtt://127.0.0.1:1883/city-os/{tenant}"}},
        },
    )
    await create(client, tenant, shelter(1))
    got: dict[str, Any] = {}

    async def counted() -> bool:
        resp = await client.get(f"{API}/subscriptions/{sid}", headers=hdr(tenant))
        got.update((await resp.json())["notification"])
        return "timesSent" in got or "timesFailed" in got

    await poll(counted, 30)
    assert (got.get("status"), got.get("timesSent")) == ("ok", 1), got


async def test_operations_endpoints(client: Client, tenant: str, sink: Receiver) -> None:
    await subscribe(
        client, tenant, {"entities": [{"type": "Shelter"}], "notification": to(sink, "o")}
    )
    await create(client, tenant, shelter(1))
    await sink.wait_of("o", 1)
    ready = await (await client.get("/ready")).json()
    assert ready["components"]["notifier"]["status"] == "up"
    metrics = await (await client.get("/metrics")).text()
    for name in (
        'cityos_notifications_total{channel="http",outcome="sent"}',
        "cityos_notification_latency_seconds_bucket",
        "cityos_notifier_queue_depth",
        "cityos_notifications_pending",
        'cityos_subscriptions{status="active"}',
        f'cityos_notifier_events_total{{tenant="{tenant}"}}',
    ):
        assert name in metrics, name


async def test_q_following_a_relationship(client: Client, tenant: str, sink: Receiver) -> None:
    """q=isConnectedTo{batteryLevel}<0.5 reads the linked Device (ETSI 49_01)."""
    for device, level in (("low", 0.3), ("full", 0.95)):
        await create(
            client,
            tenant,
            {"id": f"urn:ngsi-ld:Device:{device}", "type": "Device", "batteryLevel": value(level)},
        )
    await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Vehicle"}],
            "q": "isConnectedTo{batteryLevel}<0.5",
            "notification": to(sink, "linked"),
        },
    )
    for vehicle, device in (("ok", "full"), ("low", "low")):
        await create(
            client,
            tenant,
            {
                "id": f"urn:ngsi-ld:Vehicle:{vehicle}",
                "type": "Vehicle",
                "isConnectedTo": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{device}"},
            },
        )
    await settled(client, tenant)
    assert ids(sink.of("linked")) == ["urn:ngsi-ld:Vehicle:low"]
