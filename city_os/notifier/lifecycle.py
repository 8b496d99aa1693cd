"""Start-up of the event pipeline inside an app: the outbox relay and the notifier, each when
Kafka is configured and the process runs it (``city-os serve`` both, ``city-os relay`` /
``city-os notifier`` one each).

Layer: notifier/ (wiring, like app.py's cleanup contexts; no request handling).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from city_os.api.keys import (
    CONTEXTS,
    CSOURCE_SUBSCRIPTIONS,
    ENTITIES,
    POOL,
    QUERIES,
    SETTINGS,
    SUBSCRIPTIONS,
)
from city_os.api.ops import METRICS, NOTIFIER, RELAY
from city_os.auth.lifecycle import OUTBOUND
from city_os.events.relay import OutboxRelay, RelayConfig
from city_os.ngsiv2 import routes as ngsiv2
from city_os.notifier.access import NotificationAccess
from city_os.notifier.service import Notifier, NotifierConfig


async def relay_context(app: web.Application) -> AsyncIterator[None]:
    """The outbox relay, when Kafka is configured and the relay is enabled for this process."""
    settings = app[SETTINGS]
    if not (settings.kafka_bootstrap and settings.relay_enabled):
        yield
        return
    relay = OutboxRelay(
        app[POOL], settings.database_url, RelayConfig.from_settings(settings), app[METRICS]
    )
    app[RELAY] = relay
    task = asyncio.create_task(relay.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def notifier_context(app: web.Application) -> AsyncIterator[None]:
    """The notifier, when Kafka is configured and the notifier is enabled for this process.
    Inside the broker it also refreshes its index right after each subscription change is
    committed, and settles deliveries in flight before a subscription is read."""
    settings = app[SETTINGS]
    if not (settings.kafka_bootstrap and settings.notifier_enabled):
        yield
        return
    notifier = Notifier(
        NotifierConfig.from_settings(settings),
        app[POOL],
        settings.database_url,
        app[CONTEXTS],
        app[ENTITIES],
        app[QUERIES],
        app[METRICS],
        app[OUTBOUND],
        ngsiv2.FACES,
    )
    access = app[ENTITIES].access
    if access is not None:  # notifications: only what the subscription's owner may read
        notifier.intake.access = notifier.periodic.access = NotificationAccess(access)
    await notifier.start()
    app[NOTIFIER] = notifier
    app[METRICS].collectors.append(notifier.collect)
    subscriptions = app.get(SUBSCRIPTIONS)
    if subscriptions is not None:
        subscriptions.on_change.append(notifier.index.refresh)
        subscriptions.before_read.append(notifier.settle)
    csource_subscriptions = app.get(CSOURCE_SUBSCRIPTIONS)
    if csource_subscriptions is not None:
        csource_subscriptions.on_change.append(notifier.index.refresh)
        csource_subscriptions.before_read.append(notifier.settle)
    yield
    await notifier.close()
