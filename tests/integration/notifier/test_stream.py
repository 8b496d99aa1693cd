"""The live stream: Server-Sent Events of a ``urn:city-os:stream`` subscription, fed by the
notifier through PostgreSQL to whichever API process holds the page's connection, resumable
with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from city_os.devstack import TansuProcess
from tests.conftest import test_settings as settings_for_tests
from tests.integration.notifier.support import (
    API,
    Client,
    Receiver,
    broker,
    hdr,
    shelter,
    subscribe,
    write,
)

STREAM = "/cityos/v1/subscriptions/{}/stream"
TIMEOUT = 30.0


async def events(
    response: aiohttp.ClientResponse, count: int, within: float = TIMEOUT
) -> list[dict[str, Any]]:
    """The next ``count`` SSE events: {"id", "event", "data"} (data parsed)."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with asyncio.timeout(within):
        while len(out) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if not line:
                if "data" in current:
                    out.append(current)
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = orjson.loads(value) if name == "data" else value
    return out


async def stream_subscription(client: Client, tenant: str) -> str:
    return await subscribe(
        client,
        tenant,
        {
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": {"uri": "urn:city-os:stream"}},
        },
    )


async def test_a_page_on_another_api_process_receives_the_notifications_and_resumes(
    tansu: TansuProcess, tenant: str
) -> None:
    # the API process of the page runs neither relay nor notifier (no Kafka at all): the
    # notifications reach it through PostgreSQL
    page_app = create_app(settings_for_tests())
    async with broker(tansu.bootstrap) as client, TestClient(TestServer(page_app)) as page:
        sid = await stream_subscription(client, tenant)
        url = STREAM.format(sid)
        async with page.get(url, headers=hdr(tenant)) as live:
            assert live.status == 200
            assert live.headers["Content-Type"].startswith("text/event-stream")
            await write(client, "POST", "/entities", tenant, shelter(1), status=201)
            (first,) = await events(live, 1)
            scraped = await (await page.get("/metrics")).text()
            assert "cityos_stream_connections 1.0" in scraped
        assert first["event"] == "notification"
        assert first["data"]["subscriptionId"] == sid
        assert first["data"]["data"][0]["id"] == "urn:ngsi-ld:Shelter:1"

        # the page is gone for a while; two changes happen meanwhile
        for n in (2, 3):
            await write(client, "POST", "/entities", tenant, shelter(n), status=201)
        async with page.get(url, headers=hdr(tenant, **{"Last-Event-ID": first["id"]})) as back:
            missed = await events(back, 2)
            await write(client, "POST", "/entities", tenant, shelter(4), status=201)
            (after,) = await events(back, 1)
        ids = [e["data"]["data"][0]["id"] for e in [*missed, after]]
        assert sorted(ids[:2]) == ["urn:ngsi-ld:Shelter:2", "urn:ngsi-ld:Shelter:3"]
        assert ids[2] == "urn:ngsi-ld:Shelter:4"
        seqs = [int(e["id"]) for e in [first, *missed, after]]
        assert len(set(seqs)) == 4 and min(seqs) == seqs[0]


async def test_streams_are_refused_where_they_do_not_apply(
    tansu: TansuProcess, tenant: str, sink: Receiver
) -> None:
    async with broker(tansu.bootstrap) as client:
        http_sid = await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": sink.url}}},
        )
        stream_sid = await stream_subscription(client, tenant)
        cases = [
            (STREAM.format(http_sid), {}, 400, "urn:city-os:stream"),
            (STREAM.format(stream_sid), {"Last-Event-ID": "abc"}, 400, "Last-Event-ID"),
            (STREAM.format("urn:ngsi-ld:Subscription:none"), {}, 404, "not found"),
        ]
        for url, extra, status, named in cases:
            resp = await client.get(url, headers=hdr(tenant, **extra))
            problem = await resp.json()
            assert resp.status == status, problem
            assert named in problem["detail"]
        resp = await client.get(f"{API}/subscriptions/{stream_sid}", headers=hdr(tenant))
        assert (await resp.json())["notification"]["endpoint"]["uri"] == "urn:city-os:stream"
