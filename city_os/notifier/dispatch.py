"""Delivery: one bounded queue and its own concurrency per endpoint, in change order per key.

Layer: notifier/. Every notification is already durable (its row) when it gets here. Each
endpoint URI has a queue of its own, so a slow, hanging or dead endpoint only holds up its own
notifications. Within a queue the notifications of one (subscription, entity) go one at a
time, in order; different keys go in parallel, up to ``concurrency``. A transient failure
blocks the endpoint for a back-off (exponential with jitter, at least the receiver's
``Retry-After``); then a single probe goes before the queue runs at full speed again; the
failed notification keeps its place and its id. After the retry ``horizon`` it fails for good.
An endpoint with a ``cooldown`` (§5.2.15) is not retried: a failure closes it for the cooldown,
and notifications matched meanwhile are dropped. An endpoint that is gone for good (a Web Push
subscription its user agent ended, RFC 8030 §7.3) fails the notification and ``on_gone``
pauses the subscription (notifier/gone.py). A queue holds at most ``queue_size``
notifications in memory: beyond that they wait in PostgreSQL and are read back in order as the
queue drains. Notifications of a subscription deleted, paused or expired meanwhile are dropped.
Finished rows are recorded in batches (batch.py). While more than ``MAX_UNRECORDED`` finished
deliveries wait to be recorded (PostgreSQL lags), no new delivery starts and the record is
written at once: a replica killed at any moment has then sent at most ``MAX_UNRECORDED`` + its
deliveries in flight that its successor sends again (with the same notification id).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from city_os.notifier.batch import GroupWriter
from city_os.notifier.channels import Channel, Delivery, Endpoint, Outcome, scheme_of
from city_os.notifier.channels.endpoints import kind_of, shown
from city_os.notifier.compile import Subscription
from city_os.notifier.status import StatusRecorder
from city_os.observability.metrics import Metrics
from city_os.store.postgres.notifications import NotificationStore, StoredNotification

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # (tenant, subscription id, entity id)
SubKey = tuple[str, str]
Lookup = Callable[[SubKey], Subscription | None]
MAX_UNRECORDED = 256  # finished deliveries not yet recorded before new ones wait


@dataclass(frozen=True)
class DispatchConfig:
    concurrency: int = 8  # notifications in flight per endpoint
    queue_size: int = 10_000  # notifications per endpoint in memory
    horizon: float = 3600.0  # seconds a notification is retried
    max_delay: float = 60.0  # longest back-off, seconds
    base_delay: float = 0.25  # first back-off, seconds
    timeout: float = 10.0  # seconds to wait for a receiver without endpoint.timeout
    refill: int = 500  # notifications read back from PostgreSQL at a time


@dataclass(eq=False)
class _Queue:
    uri: str
    channel: Channel
    keys: dict[Key, deque[Delivery]] = field(default_factory=dict)
    ready: deque[Key] = field(default_factory=deque)  # keys whose head may go now
    busy: set[Key] = field(default_factory=set)  # keys whose head is in flight or waiting
    size: int = 0
    inflight: int = 0
    failures: int = 0  # consecutive transient failures
    blocked_until: float = 0.0  # loop time
    cooldown: tuple[float, float] = (0.0, 0.0)  # wall-clock window: matched then → dropped
    wake: asyncio.TimerHandle | None = None
    spilled: bool = False  # newer notifications wait in PostgreSQL
    spilled_max: int = 0
    loaded: int = 0  # highest seq read into memory in order
    refilling: bool = False


class Dispatcher:
    def __init__(
        self,
        store: NotificationStore,
        status: StatusRecorder,
        lookup: Lookup,
        channel_for: Callable[[str], Channel],
        config: DispatchConfig,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._status = status
        self._lookup = lookup
        self._channel_for = channel_for
        self._config = config
        self._metrics = metrics
        self._queues: dict[str, _Queue] = {}
        self._present: set[int] = set()  # seqs in memory
        self._inflight: Counter[SubKey] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = GroupWriter("finished deliveries", store.finish)
        self._finished.on_written = self._resume
        self._held = False  # deliveries wait for the finished ones to be recorded
        self._landed = asyncio.Event()  # set whenever a delivery attempt ends
        self._closed = False
        # (subscription, endpoint URI) whose endpoint is gone for good (notifier/gone.py)
        self.on_gone: Callable[[SubKey, str], None] | None = None

    # ---------------------------------------------------------------- intake

    def submit(self, rows: list[StoredNotification], *, taken_over: bool = False) -> None:
        """Queue stored notifications (in seq order). Rows taken over from another replica
        join their keys in seq order and are never left in PostgreSQL."""
        touched: set[str] = set()
        for row in rows:
            if row.seq in self._present or self._closed:
                continue
            q = self._queue(row.endpoint)
            if not taken_over:
                if q.spilled or q.size >= self._config.queue_size:
                    q.spilled = True
                    q.spilled_max = max(q.spilled_max, row.seq)
                    continue
                q.loaded = max(q.loaded, row.seq)
            self._enqueue(q, self._delivery(row), ordered=taken_over)
            touched.add(row.endpoint)
        for uri in touched:
            self._pump(self._queues[uri])

    def _delivery(self, row: StoredNotification) -> Delivery:
        sub = self._lookup((row.tenant, row.subscription_id))
        endpoint = sub.endpoint if sub is not None else Endpoint(row.endpoint, self._config.timeout)
        if endpoint.uri != row.endpoint:  # the subscription moved on: keep the stored target
            endpoint = Endpoint(row.endpoint, endpoint.timeout, endpoint.cooldown)
        return Delivery(
            seq=row.seq,
            notification_id=row.notification_id,
            tenant=row.tenant,
            subscription_id=row.subscription_id,
            entity_id=row.entity_id,
            endpoint=endpoint,
            headers=row.headers,
            body=row.body,
            created=row.created,
            event_time=row.event_time,
            attempts=row.attempts,
        )

    def _queue(self, uri: str) -> _Queue:
        q = self._queues.get(uri)
        if q is None:
            q = self._queues[uri] = _Queue(uri, self._channel_for(scheme_of(uri)))
        return q

    def _enqueue(self, q: _Queue, d: Delivery, *, ordered: bool) -> None:
        self._present.add(d.seq)
        q.size += 1
        pending = q.keys.get(d.key)
        if pending is None:
            q.keys[d.key] = deque([d])
            q.ready.append(d.key)
            return
        if not ordered:
            pending.append(d)
            return
        seqs = [x.seq for x in pending]
        # never in front of a head that is in flight
        at = max(bisect.bisect(seqs, d.seq), 1 if d.key in q.busy else 0)
        pending.insert(at, d)

    # ---------------------------------------------------------------- sending

    def _pump(self, q: _Queue) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if q.blocked_until > now:
            if q.wake is None:
                q.wake = loop.call_at(q.blocked_until, self._unblock, q)
            return
        while q.ready and q.inflight < (1 if q.failures else self._config.concurrency):
            if self._finished.unwritten >= MAX_UNRECORDED:
                self._held = True
                self._finished.hurry()  # no pause: the queues wait for this write
                return
            key = q.ready.popleft()
            d = q.keys[key][0]
            q.busy.add(key)
            q.inflight += 1
            self._inflight[d.tenant, d.subscription_id] += 1
            task = loop.create_task(self._deliver(q, d))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _resume(self) -> None:
        """Finished deliveries were recorded: queues held back may go on."""
        if self._held and not self._closed:
            self._held = False
            for q in list(self._queues.values()):
                if q.ready:
                    self._pump(q)

    def _unblock(self, q: _Queue) -> None:
        q.wake = None
        self._pump(q)

    async def _deliver(self, q: _Queue, d: Delivery) -> None:
        try:
            await self._attempt(q, d)
        except Exception:
            log.exception("delivery of %s failed unexpectedly; retrying", d.notification_id)
            self._retry(q, d, Outcome(False, True, "internal error"), scheme_of(q.uri))
        finally:
            q.inflight -= 1
            sub = (d.tenant, d.subscription_id)
            self._inflight[sub] -= 1
            if not self._inflight[sub]:
                del self._inflight[sub]
            self._landed.set()
            if not self._closed:
                self._pump(q)
                self._maybe_refill(q)

    async def _attempt(self, q: _Queue, d: Delivery) -> None:
        now = time.time()
        sub = self._lookup((d.tenant, d.subscription_id))
        if sub is None or not sub.live(now):
            self._done(q, d, "dropped")
            return
        start, end = q.cooldown
        if d.attempts == 0 and start <= d.created < end:
            self._done(q, d, "dropped")  # §5.2.15: nothing is sent during the cooldown
            return
        d.attempts += 1
        outcome = await q.channel.send(d)
        scheme = kind_of(q.uri, dict(d.endpoint.notifier_info))
        when = datetime.now(UTC)
        self._status.record((d.tenant, d.subscription_id), outcome.ok, when, outcome.reason)
        if outcome.ok:
            q.failures = 0
            self._metrics.notification_sent(scheme, d.event_time)
            self._done(q, d, "sent", scheme)
        elif d.endpoint.cooldown:
            # §5.2.15: after a failure nothing goes to the endpoint for the cooldown, and what
            # is matched meanwhile is not sent; the failed notification is not retried either.
            self._cool_down(q, d.endpoint.cooldown)
            reason = f"{outcome.reason}; cooling down {d.endpoint.cooldown:g} s"
            self._give_up(q, d, reason, scheme)
        elif outcome.gone:
            # RFC 8030 §7.3: the push subscription ended; the subscription is paused
            reason = f"{outcome.reason or 'gone'}; subscription paused"
            self._give_up(q, d, reason, scheme)
            if self.on_gone is not None:
                self.on_gone((d.tenant, d.subscription_id), d.endpoint.uri)
        elif not outcome.transient:
            self._give_up(q, d, outcome.reason or "refused", scheme)
        elif time.time() - d.created > self._config.horizon:
            self._give_up(q, d, f"{outcome.reason}; gave up after {d.attempts} attempts", scheme)
        else:
            self._retry(q, d, outcome, scheme)

    def _retry(self, q: _Queue, d: Delivery, outcome: Outcome, channel: str) -> None:
        """Keep ``d`` at the head of its key and block the endpoint for a back-off."""
        q.failures += 1
        cfg = self._config
        delay = min(cfg.max_delay, cfg.base_delay * 2 ** (q.failures - 1))
        delay *= random.uniform(0.5, 1.5)  # jitter: replicas and keys do not retry in step
        if outcome.retry_after is not None:  # the receiver said when (at most the horizon)
            delay = max(delay, min(outcome.retry_after, cfg.horizon))
        q.blocked_until = max(q.blocked_until, asyncio.get_running_loop().time() + delay)
        self._metrics.notification_outcome(channel, "retried")
        log.info(
            "notification %s to %s: %s; retry in %.2f s",
            d.notification_id,
            shown(q.uri),
            outcome.reason,
            delay,
        )
        q.busy.discard(d.key)
        q.ready.appendleft(d.key)

    def _cool_down(self, q: _Queue, seconds: float) -> None:
        now = time.time()
        q.cooldown = (now, now + seconds)
        q.blocked_until = max(q.blocked_until, asyncio.get_running_loop().time() + seconds)

    def _give_up(self, q: _Queue, d: Delivery, reason: str, channel: str) -> None:
        log.warning(
            "notification %s to %s failed for good: %s", d.notification_id, shown(q.uri), reason
        )
        self._status.gave_up((d.tenant, d.subscription_id), datetime.now(UTC), reason)
        self._done(q, d, "failed", channel)

    def _done(self, q: _Queue, d: Delivery, state: str, channel: str | None = None) -> None:
        pending = q.keys[d.key]
        pending.popleft()
        q.size -= 1
        self._present.discard(d.seq)
        q.busy.discard(d.key)
        if pending:
            q.ready.append(d.key)
        else:
            del q.keys[d.key]
        if state != "sent":
            self._metrics.notification_outcome(channel or scheme_of(q.uri), state)
        self._finished.add((d.seq, state, d.attempts))

    # ---------------------------------------------------------------- backlog

    def _maybe_refill(self, q: _Queue) -> None:
        if q.spilled and not q.refilling and q.size < self._config.queue_size // 2:
            q.refilling = True
            task = asyncio.get_running_loop().create_task(self._refill(q))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _refill(self, q: _Queue) -> None:
        try:
            rows = await self._store.backlog(q.uri, q.loaded, self._config.refill)
            for row in rows:
                if row.seq not in self._present:
                    self._enqueue(q, self._delivery(row), ordered=False)
                q.loaded = max(q.loaded, row.seq)
            if len(rows) < self._config.refill and q.loaded >= q.spilled_max:
                q.spilled = False
        except Exception:
            log.exception("reading back the notifications of %s failed", shown(q.uri))
        finally:
            q.refilling = False
        self._pump(q)
        self._maybe_refill(q)

    # ---------------------------------------------------------------- state

    def depths(self) -> dict[str, int]:
        return {uri: q.size for uri, q in self._queues.items()}

    def in_flight(self, key: SubKey | None = None) -> int:
        if key is None:
            return sum(self._inflight.values())
        return self._inflight.get(key, 0)

    async def settle(self, key: SubKey | None, within: float) -> None:
        """Wait (at most ``within`` s) for the deliveries of a subscription in flight, then
        write the finished ones and the delivery status (for every subscription: only that)."""
        deadline = time.monotonic() + within
        while key is not None and self.in_flight(key) and time.monotonic() < deadline:
            self._landed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._landed.wait(), deadline - time.monotonic())
        await self._finished.flush()
        await self._status.flush()

    async def close(self, grace: float = 2.0) -> None:
        self._closed = True
        for q in self._queues.values():
            if q.wake is not None:
                q.wake.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await self._finished.close()
