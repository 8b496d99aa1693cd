"""/v2/subscriptions over real HTTP; v2 notifications delivered by the real notifier (Tansu,
relay, HTTP receivers), for writes through either API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import orjson
from aiohttp import web

from city_os.devstack import free_port
from tests.integration.events.support import poll
from tests.integration.ngsiv2.support import Client, create_v2, error, get_v2, room, v2
from tests.integration.notifier.support import stack, subscribe


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """An HTTP receiver answering 200 to any method on any path."""

    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(
            Hit(request.method, request.path, dict(request.query), dict(request.headers),
                await request.read())
        )  # fmt: skip
        return web.Response(status=200)

    def of(self, name: str) -> list[Hit]:
        return [h for h in self.hits if h.path == "/" + name]

    async def wait(self, name: str, count: int) -> list[Hit]:
        async def enough() -> bool:
            return len(self.of(name)) >= count

        await poll(enough, 30.0)
        return self.of(name)


@asynccontextmanager
async def sink() -> AsyncIterator[Sink]:
    s = Sink()
    app = web.Application()
    app.router.add_route("*", "/{name}", s.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", s.port).start()
    try:
        yield s
    finally:
        await runner.cleanup()


def v2_sub(url: str, **notification: Any) -> dict[str, Any]:
    return {
        "description": "rooms",
        "subject": {
            "entities": [{"idPattern": ".*", "type": "Room"}],
            "condition": {"attrs": ["temperature"]},
        },
        "notification": {"http": {"url": url}, **notification},
        "throttling": 0.001,
    }


async def post_sub(client: Client, service: str, body: dict[str, Any]) -> str:
    resp = await client.post("/v2/subscriptions", json=body, headers=v2(service))
    assert resp.status == 201, await resp.text()
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_subscription_resource(client: Client, service: str) -> None:
    body = v2_sub("http://127.0.0.1:9/n", attrs=["temperature"], attrsFormat="keyValues")
    body["expires"] = "2040-01-01T00:00:00Z"
    body["subject"]["condition"]["expression"] = {"q": "temperature>20"}
    sid = await post_sub(client, service, body)
    assert len(sid) == 24
    got = await get_v2(client, service, f"/v2/subscriptions/{sid}")
    assert got["id"] == sid
    assert got["status"] == "active"
    assert got["subject"] == body["subject"]
    assert got["notification"]["attrsFormat"] == "keyValues"
    assert [s["id"] for s in await get_v2(client, service, "/v2/subscriptions")] == [sid]
    ld = await client.get(
        f"/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:{sid}",
        headers={"NGSILD-Tenant": service},
    )
    ld_body = await ld.json()
    assert ld_body["q"] == "temperature>20"
    assert ld_body["watchedAttributes"] == ["temperature"]
    assert ld_body["expiresAt"].startswith("2040-01-01T00:00:00")
    resp = await client.patch(
        f"/v2/subscriptions/{sid}", json={"status": "inactive"}, headers=v2(service)
    )
    assert resp.status == 204, await resp.text()
    assert (await get_v2(client, service, f"/v2/subscriptions/{sid}"))["status"] == "inactive"
    resp = await client.delete(f"/v2/subscriptions/{sid}", headers=v2(service))
    assert resp.status == 204
    gone = await client.get(f"/v2/subscriptions/{sid}", headers=v2(service))
    await error(gone, 404, "NotFound")
    bad = await client.post(
        "/v2/subscriptions", json={"subject": {}, "notification": {}}, headers=v2(service)
    )
    await error(bad, 400, "BadRequest")
    fmt = v2_sub("http://127.0.0.1:9/n", attrsFormat="fancy")
    await error(
        await client.post("/v2/subscriptions", json=fmt, headers=v2(service)),
        400,
        "BadRequest",
        "attrsFormat",
    )


async def test_an_attrs_format_that_is_not_a_string_is_refused(
    client: Client, service: str
) -> None:
    """Found by fuzzing: an object as attrsFormat was a 500."""
    for fmt in ({}, [], 1):
        body = v2_sub("http://127.0.0.1:9/n", attrsFormat=fmt)
        resp = await client.post("/v2/subscriptions", json=body, headers=v2(service))
        await error(resp, 400, "BadRequest", "attrsFormat")
    assert await get_v2(client, service, "/v2/subscriptions") == []


async def test_notifications_across_apis(service: str) -> None:
    async with stack() as client, sink() as s:
        await post_sub(client, service, v2_sub(s.url("normalized"), metadata=["accuracy"]))
        await post_sub(
            client, service, v2_sub(s.url("kv"), attrsFormat="keyValues", attrs=["temperature"])
        )
        await post_sub(
            client, service, v2_sub(s.url("legacy"), attrsFormat="legacy", attrs=["temperature"])
        )
        custom = {
            "url": s.url("custom"),
            "method": "PUT",
            "qs": {"source": "city-os"},
            "headers": {"X-Room": "${id}"},
            "payload": "room %22${id}%22 is at ${temperature} degrees",
        }
        await post_sub(client, service, {**v2_sub(""), "notification": {"httpCustom": custom}})
        ld_sid = await subscribe(client, service, {
            "entities": [{"type": "Room"}],
            "watchedAttributes": ["temperature"],
            "notification": {"endpoint": {"uri": s.url("ngsild")}, "format": "keyValues"},
        })  # fmt: skip
        assert ld_sid

        await create_v2(client, service, room(1))  # v2 write
        hits = await s.wait("normalized", 1)
        note = orjson.loads(hits[0].body)
        assert hits[0].headers["Fiware-Service"] == service
        assert hits[0].headers["Ngsiv2-AttrsFormat"] == "normalized"
        assert len(note["subscriptionId"]) == 24
        entity = note["data"][0]
        assert entity["id"] == "Room1"
        assert entity["temperature"]["metadata"] == {"accuracy": {"type": "Number", "value": 0.5}}
        kv = orjson.loads((await s.wait("kv", 1))[0].body)
        assert kv["data"] == [{"id": "Room1", "type": "Room", "temperature": 23.5}]
        legacy = orjson.loads((await s.wait("legacy", 1))[0].body)
        element = legacy["contextResponses"][0]["contextElement"]
        assert element["id"] == "Room1"
        assert element["attributes"][0]["name"] == "temperature"
        put = (await s.wait("custom", 1))[0]
        assert put.method == "PUT"
        assert put.query == {"source": "city-os"}
        assert put.headers["X-Room"] == "Room1"
        assert put.body == b'room "Room1" is at 23.5 degrees'
        ld_note = orjson.loads((await s.wait("ngsild", 1))[0].body)
        assert ld_note["data"][0]["id"] == "urn:ngsiv:Room1"  # NGSI-LD subscription, v2 write

        # an NGSI-LD write notifies the v2 subscriptions
        resp = await client.patch(
            "/ngsi-ld/v1/entities/urn:ngsiv:Room1/attrs",
            json={"temperature": {"type": "Property", "value": 30}},
            headers={"NGSILD-Tenant": service, "Content-Type": "application/json"},
        )
        assert resp.status == 204, await resp.text()
        kv = orjson.loads((await s.wait("kv", 2))[1].body)
        assert kv["data"] == [{"id": "Room1", "type": "Room", "temperature": 30}]


async def test_mqtt_notification_is_the_bare_v2_notification(service: str) -> None:
    topic = f"city-os/test/v2/{uuid.uuid4().hex}"
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with aiomqtt.Client("127.0.0.1", 1883) as mqtt, stack() as client:
        await mqtt.subscribe(topic, qos=1)

        async def pump() -> None:
            async for msg in mqtt.messages:
                assert isinstance(msg.payload, bytes)
                await received.put(msg.payload)

        task = asyncio.create_task(pump())
        try:
            body = {
                "subject": {
                    "entities": [{"idPattern": ".*"}],
                    "condition": {"alterationTypes": []},
                },
                "notification": {
                    "mqtt": {"url": "mqtt://127.0.0.1:1883", "topic": topic, "qos": 1},
                    "attrsFormat": "keyValues",
                },
            }
            sid = await post_sub(client, service, body)
            await create_v2(client, service, {"id": "Car1", "type": "Car", "speed": {"value": 5}})
            payload = await asyncio.wait_for(received.get(), 30)
        finally:
            task.cancel()
    note = orjson.loads(payload)
    assert note == {"subscriptionId": sid, "data": [{"id": "Car1", "type": "Car", "speed": 5}]}
