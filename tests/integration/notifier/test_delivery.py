"""Notifications over HTTP, end to end: API → outbox → relay → Kafka (Tansu) → notifier →
a local receiver."""

from __future__ import annotations

from city_os.devstack import TansuProcess
from tests.integration.notifier.support import Receiver, broker, shelter, subscribe, write


async def test_a_change_is_notified(tansu: TansuProcess, sink: Receiver, tenant: str) -> None:
    async with broker(tansu.bootstrap) as client:
        sid = await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": sink.url}}},
        )
        await write(client, "POST", "/entities", tenant, shelter(1), status=201)
        await write(client, "PATCH", "/entities/urn:ngsi-ld:Shelter:1/attrs", tenant,
                    {"capacity": {"type": "Property", "value": 90}})  # fmt: skip
        got = await sink.wait_for(2)
        first, second = got[0].body, got[1].body
        assert first["subscriptionId"] == sid and first["type"] == "Notification"
        assert first["triggerReason"] == "attributeCreated"
        assert second["triggerReason"] == "attributeUpdated"
        assert second["data"][0]["capacity"]["value"] == 90
        assert got[0].headers["Content-Type"] == "application/json"
        assert "json-ld#context" in got[0].headers["Link"]
        assert got[0].headers["NGSILD-Tenant"] == tenant


async def test_an_oversized_change_is_read_from_the_store(
    tansu: TansuProcess, sink: Receiver, tenant: str
) -> None:
    """A change too large for Kafka comes as a claim check: the notifier reads the entity."""
    async with broker(tansu.bootstrap, kafka_max_message_bytes=2000) as client:
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": sink.url}}},
        )
        big = shelter(1, notes={"type": "Property", "value": "x" * 5000})
        await write(client, "POST", "/entities", tenant, big, status=201)
        got = await sink.wait_for(1)
        assert got[0].body["data"][0]["notes"]["value"] == "x" * 5000
