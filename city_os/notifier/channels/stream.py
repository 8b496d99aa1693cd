"""The live stream channel: notifications of ``urn:city-os:stream`` subscriptions.

Layer: notifier/ (a delivery channel). Delivering is appending the notification to
``cityos.stream_events`` (store/postgres/streams.py), which NOTIFYs every API process: the one
holding a web page's Server-Sent Events connection to the subscription
(``GET /cityos/v1/subscriptions/{id}/stream``, api/streams.py) sends it on. The notification
counts as delivered once it is stored; pages not connected read it after reconnecting
(Last-Event-ID) within ``CITYOS_STREAM_RETENTION``.
"""

from __future__ import annotations

import asyncpg

from city_os.notifier.channels import Delivery, Outcome
from city_os.store.postgres.streams import StreamStore


class StreamChannel:
    def __init__(self, store: StreamStore) -> None:
        self._store = store

    async def send(self, delivery: Delivery) -> Outcome:
        try:
            await self._store.append(
                delivery.tenant, delivery.subscription_id, delivery.notification_id, delivery.body
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return Outcome(False, True, f"the stream table is not writable now: {exc}"[:500])
        return Outcome(True)

    async def close(self) -> None:
        return None
