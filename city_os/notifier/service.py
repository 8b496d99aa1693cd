"""The notifier as a running component: ``city-os serve`` runs one inside the broker,
``city-os notifier`` runs it alone; any number of replicas share the work.

Layer: notifier/. Wires the index, the consumer group, the durable deliveries, the dispatcher,
the channels, the periodic timers and the delivery status, and runs the housekeeping: lease
renewal, take-over of rows whose replica died (its lease ran out), deletion of old finished
rows, and another try at subscriptions whose @context could not be resolved. Each replica has
an id of its own (its lease owner); a restarted process is a new replica, whose predecessor's
rows are taken over once their leases run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from city_os.auth.network import OutboundPolicy
from city_os.config import Settings
from city_os.core.contexts import ContextLoader
from city_os.core.entities import EntityService
from city_os.core.query import QueryService
from city_os.federation.csource_notify import CSourceNotifier
from city_os.ngsild.subscription import status as subscription_status
from city_os.notifier.channels import ChannelOptions, Channels
from city_os.notifier.channels.endpoints import shown
from city_os.notifier.compile import Compiler
from city_os.notifier.consumer import ChangeConsumer, ConsumerConfig
from city_os.notifier.dispatch import DispatchConfig, Dispatcher
from city_os.notifier.gone import GoneEndpoints
from city_os.notifier.index import SubscriptionIndex
from city_os.notifier.intake import Intake
from city_os.notifier.periodic import PeriodicNotifier
from city_os.notifier.render import Face
from city_os.notifier.selection import SelectionFilter
from city_os.notifier.status import StatusRecorder
from city_os.observability.metrics import Metrics
from city_os.store.postgres.csource import RegistrationRepository
from city_os.store.postgres.notifications import NotificationStore
from city_os.store.postgres.streams import StreamStore
from city_os.store.postgres.subscriptions import SubscriptionRepository
from city_os.store.postgres.webpush import vapid_private_key

log = logging.getLogger(__name__)
CLEANUP_INTERVAL = 60.0  # seconds between deletes of old finished rows
TAKE_OVER_BATCH = 1000
SETTLE_WAIT = 0.25  # seconds a read of a subscription waits for its deliveries in flight


@dataclass(frozen=True)
class NotifierConfig:
    consumer: ConsumerConfig
    dispatch: DispatchConfig
    lease: float
    retention: float
    push_subject: str = "mailto:admin@city-os.invalid"
    stream_retention: float = 600.0
    source: str = ""  # CloudEvents source of the subscription changes it makes (the API's URL)

    @classmethod
    def from_settings(cls, settings: Settings) -> NotifierConfig:
        return cls(
            consumer=ConsumerConfig(
                bootstrap=settings.kafka_bootstrap,
                topic=settings.kafka_topic,
                group_id=settings.notifier_group_id,
                batch_size=settings.notifier_batch_size,
                fetch_wait=settings.notifier_fetch_wait,
            ),
            dispatch=DispatchConfig(
                concurrency=settings.notifier_concurrency,
                queue_size=settings.notifier_queue_size,
                horizon=settings.notifier_retry_horizon,
                max_delay=settings.notifier_retry_max_delay,
                timeout=settings.notifier_timeout,
            ),
            lease=settings.notifier_lease,
            retention=settings.notifier_retention,
            push_subject=settings.webpush_subject,
            stream_retention=settings.stream_retention,
            source=settings.base_url,
        )


class Notifier:
    def __init__(
        self,
        config: NotifierConfig,
        pool: asyncpg.Pool,
        dsn: str,
        contexts: ContextLoader,
        entities: EntityService,
        queries: QueryService,
        metrics: Metrics,
        outbound: OutboundPolicy,
        faces: Mapping[str, Face] | None = None,
    ) -> None:
        self.config = config
        self.replica = uuid.uuid4()
        tenants = entities.tenants
        repo = SubscriptionRepository(pool)
        self._tenants, self._repo = tenants, repo
        self.index = SubscriptionIndex(
            repo, tenants, Compiler(contexts, config.dispatch.timeout, faces), dsn
        )
        self.store = NotificationStore(pool, self.replica, config.lease)
        self.status = StatusRecorder(repo, tenants)
        self.streams = StreamStore(pool)
        self.channels = Channels(
            ChannelOptions(
                outbound,
                config.dispatch.concurrency,
                vapid_key=lambda: vapid_private_key(pool),
                push_subject=config.push_subject,
                pool=pool,
            )
        )
        self.dispatcher = Dispatcher(
            self.store,
            self.status,
            self.index.get,
            self.channels.for_scheme,
            config.dispatch,
            metrics,
        )
        self.gone = GoneEndpoints(repo, tenants, config.source)
        self.dispatcher.on_gone = self.gone.gone
        self.intake = Intake(
            self.index,
            SelectionFilter(entities.repo, tenants),
            self.store,
            self.dispatcher,
            entities,
            metrics,
        )
        self.consumer = ChangeConsumer(
            config.consumer, self.intake.handle, durable=self.store.barrier
        )
        self.periodic = PeriodicNotifier(self.store, self.index, queries, self.dispatcher)
        # csourceSubscriptions (§5.11): notified of registration changes and periods
        csource = CSourceNotifier(RegistrationRepository(pool), tenants)
        self.intake.csource = self.periodic.csource = csource
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.index.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self.consumer.run()),
            loop.create_task(self.periodic.run()),
            loop.create_task(self._housekeeping()),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.dispatcher.close()
        await self.gone.close()
        await self.status.close()
        with contextlib.suppress(Exception):
            await self.store.release()
        await self.channels.close()
        await self.index.close()

    async def _housekeeping(self) -> None:
        last_cleanup = 0.0
        while True:
            await asyncio.sleep(self.config.lease / 3)
            try:
                await self.store.renew()
                taken = await self.store.take_over(TAKE_OVER_BATCH)
                if taken:
                    log.info("took over %d notifications of a stopped replica", len(taken))
                    self.dispatcher.submit(taken, taken_over=True)
                if time.monotonic() - last_cleanup > CLEANUP_INTERVAL:
                    last_cleanup = time.monotonic()
                    await self.store.cleanup(self.config.retention)
                    await self.streams.cleanup(self.config.stream_retention)
                    await self.index.retry()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifier housekeeping failed; trying again")

    # ---------------------------------------------------------------- hooks

    async def settle(self, tenant: str, subscription_id: str | None) -> None:
        """Before a read in this process: deliveries in flight land, their status is stored."""
        key = None if subscription_id is None else (tenant, subscription_id)
        await self.dispatcher.settle(key, SETTLE_WAIT)

    # ---------------------------------------------------------------- health

    def health(self) -> tuple[str, str]:
        """(up | down | starting, detail) for /ready."""
        c = self.consumer
        detail = c.error or f"{c.assigned} partitions, {len(list(self.index.all()))} subscriptions"
        return c.state, detail

    async def collect(self, metrics: Metrics) -> None:
        """Scrape-time gauges: queue depths, pending rows, subscriptions by status."""
        metrics.notifier_queue.clear()
        for uri, depth in self.dispatcher.depths().items():
            metrics.notifier_queue.labels(shown(uri)).set(depth)
        metrics.notifier_pending.set(await self.store.pending())
        counts: dict[str, int] = {"active": 0, "failed": 0, "paused": 0, "expired": 0}
        now = datetime.now(UTC)
        failing = {
            (tenant, sid)
            for tenant, schema in await self._tenants.all()
            for sid in await self._repo.failing(schema)
        }
        for sub in self.index.all():
            state: str = subscription_status(sub.doc, now)
            if state == "active" and sub.key in failing:
                state = "failed"  # active, but its last notification failed
            counts[state] += 1
        counts["unusable"] = len(self.index.broken())
        for name, n in counts.items():
            metrics.subscriptions.labels(name).set(n)
