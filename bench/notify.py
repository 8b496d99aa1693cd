"""Notification latency and fan-out (issue #9): write → outbox → relay → Kafka → notifier → HTTP.

Layer: bench/. Runs a throwaway Tansu and the production topology (deploy/docker-compose.yml,
deploy/kubernetes): ``city-os api``, ``city-os relay`` and one ``city-os notifier``, each its own
process (default settings, ``CITYOS_OUTBOUND_ALLOW=loopback``); ``BENCH_NOTIFY_TOPOLOGY=serve`` runs
the all-in-one ``city-os serve`` instead (API, relay and notifier in one process, as for development
and a small city). The receiver is an aiohttp app in the bench process that only stamps each
arrival (bodies are parsed after the run), the writer runs in the client process.

1. Latency: 1,000 AirQualityObserved entities, 100 subscriptions (each on 10 of them by id,
   watching ``temperature``, keyValues, an endpoint URL of its own), partial updates of
   ``temperature`` paced at ``RATE``/s for ``SECONDS`` s, each with a unique value. Latency of a
   notification = its arrival − the client's receipt of the write's 204. Lost = answered writes
   whose notification did not arrive within ``TIMEOUT`` s. Target: p99 ≤ 50 ms, none lost.
   Split at the notification's ``notifiedAt`` (stamped by the notifier as it renders a batch):
   upstream = 204 → notifiedAt (relay, Kafka, the notifier's fetch and matching), downstream =
   notifiedAt → arrival (storing the deliveries, the queue, HTTP). CPU seconds per process over
   the window are printed beside them.
2. Fan-out: ``FANOUT_SUBS`` subscriptions on every AirQualityObserved watching ``pm25``, each with
   its own endpoint, then ``FANOUT_WRITES`` partial updates of ``pm25`` as fast as they go:
   notifications per second delivered (first → last arrival), next to the ceiling of the same
   run: a bare aiohttp client (in the client process) posting as many notification bodies to the
   same receiver with the notifier's concurrency per endpoint. Target: ≥ 3,000/s.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from bench import guard, profile, stack
from bench.kafka import tansu_topic
from bench.loadgen import Answer, Paced, paced_patches, pct, post_batches
from bench.runner import Runner
from bench.workload import ENTITY_TYPE, PREFIX, entity_id
from city_os.config import Settings

RATE = 500.0  # updates per second (latency)
SECONDS = 8.0
ENTITIES = 1000
SUBSCRIPTIONS = 100
FANOUT_SUBS = 20
FANOUT_WRITES = 1500
CONNECTIONS = 16
PARTITIONS = 4
TIMEOUT = 60.0
P99_TARGET_MS = 50.0
FANOUT_TARGET = 3000.0
PROFILE_SECONDS = 12.0  # py-spy on the server from the first fan-out write (--profile)
PROFILE_OUT = Path("/tmp/cityos-bench-notify-fanout.pyspy")
PROFILE_LATENCY = Path("/tmp/cityos-bench-notify-latency.pyspy")
# production (api, relay and notifier processes) or serve (all in one process)
TOPOLOGY = os.environ.get("BENCH_NOTIFY_TOPOLOGY", "production")


class Sink:
    """The receiver: (arrival time, query string, body) of every POST, answered 204."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str, bytes]] = []
        self.runner: web.AppRunner | None = None
        self.port = stack.free_port()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append((time.time(), request.query_string, body))
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/n", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, backlog=1024).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def wait_for(self, n: int, within: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + within
        while len(self.got) < n:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


# ------------------------------------------------------------------ ceiling (client process)


async def _bare(port: int, body: bytes, endpoints: int, n: int, per_endpoint: int) -> float:
    """The ceiling: ``n`` POSTs of ``body`` spread over ``endpoints`` URLs, ``per_endpoint`` in
    flight on each (the notifier's concurrency); returns the client's wall seconds."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as http:
        remaining = [n // endpoints + (1 if e < n % endpoints else 0) for e in range(endpoints)]

        async def lane(e: int) -> None:
            url = f"http://127.0.0.1:{port}/n?s=bare{e}"
            while remaining[e] > 0:
                remaining[e] -= 1
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()

        started = time.perf_counter()
        await asyncio.gather(*(lane(e) for e in range(endpoints) for _ in range(per_endpoint)))
        return time.perf_counter() - started


def bare(port: int, body: bytes, endpoints: int, n: int, per_endpoint: int) -> float:
    import uvloop

    return uvloop.run(_bare(port, body, endpoints, n, per_endpoint))


# ------------------------------------------------------------------------------- results


@dataclass
class NotifyResults:
    writes: int = 0
    write_errors: int = 0
    write_seconds: float = 0.0
    latency: list[float] = field(default_factory=list)  # seconds
    upstream: list[float] = field(default_factory=list)  # 204 → notifiedAt, seconds
    downstream: list[float] = field(default_factory=list)  # notifiedAt → arrival, seconds
    cpu: dict[str, float] = field(default_factory=dict)  # process → CPU seconds (latency)
    topology: str = TOPOLOGY
    lost: int = 0
    duplicates: int = 0
    load1: float = 0.0
    fanout_expected: int = 0
    fanout_received: int = 0
    fanout_seconds: float = 0.0
    fanout_load1: float = 0.0
    ceiling_sent: int = 0
    ceiling_seconds: float = 0.0
    sample: bytes = b"{}"  # a notification body the notifier sent (the ceiling posts it)
    profile: list[str] = field(default_factory=list)
    latency_profile: list[str] = field(default_factory=list)


def _latency(res: NotifyResults, done: list[Answer], got: list[tuple[float, str, bytes]]) -> None:
    answered = {seq: t for seq, status, t in done if status == 204}
    res.writes, res.write_errors = len(done), len(done) - len(answered)
    times = [t for _, _, t in done]
    res.write_seconds = max(times) - min(times) if times else 0.0
    seen: set[int] = set()
    for arrived, _, body in got:
        doc = orjson.loads(body)
        notified = _epoch(doc.get("notifiedAt", ""))
        for entity in doc["data"]:
            seq = entity.get("temperature")
            if not isinstance(seq, int) or seq not in answered:
                continue
            if seq in seen:
                res.duplicates += 1
                continue
            seen.add(seq)
            res.latency.append(arrived - answered[seq])
            if notified is not None:
                res.upstream.append(notified - answered[seq])
                res.downstream.append(arrived - notified)
    res.lost = len(answered.keys() - seen)


def _epoch(stamp: object) -> float | None:
    """An ISO ``notifiedAt`` (…Z) as epoch seconds."""
    from datetime import datetime

    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ------------------------------------------------------------------------------------- run


async def _subscribe(http: aiohttp.ClientSession, port: int, body: dict[str, object]) -> None:
    url = f"http://127.0.0.1:{port}{PREFIX}/subscriptions"
    async with http.post(
        url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
    ) as resp:
        if resp.status != 201:
            raise SystemExit(f"notify: subscription {resp.status} {await resp.text()}")


async def _indexed(http: aiohttp.ClientSession, port: int, n: int) -> None:
    """Wait until the notifier has joined its group and indexes ``n`` subscriptions."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        async with http.get(f"http://127.0.0.1:{port}/ready") as resp:
            notifier = (await resp.json())["components"].get("notifier", {})
        detail = notifier.get("detail", "")
        words = detail.replace(",", "").split()
        if notifier.get("status") == "up" and len(words) >= 3 and int(words[2]) >= n:
            return
        await asyncio.sleep(0.1)
    raise SystemExit(f"notify: the notifier did not index {n} subscriptions ({detail})")


def _metric(text: str, name: str) -> float:
    """The sum of a metric's samples (every label set) in a Prometheus text exposition."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _caught_up(http: aiohttp.ClientSession, relay: int, notifier: int) -> None:
    """Wait until the outbox is empty and the notifier handled every published event (the
    seeding and the subscription changes): none of them queues ahead of the measured writes."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        async with http.get(f"http://127.0.0.1:{relay}/metrics") as resp:
            published = await resp.text()
        async with http.get(f"http://127.0.0.1:{notifier}/metrics") as resp:
            handled = await resp.text()
        backlog = _metric(published, "cityos_outbox_backlog_events")
        sent = _metric(published, "cityos_events_published_total")
        if backlog == 0 and _metric(handled, "cityos_notifier_events_total") >= sent > 0:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("notify: the notifier did not catch up with the published events")


async def run(runner: Runner, dsn: str) -> NotifyResults:
    res = NotifyResults()
    sink = Sink()
    await sink.start()
    try:
        async with tansu_topic(PARTITIONS) as bootstrap:
            await _through_broker(runner, dsn, bootstrap, sink, res)
        # the ceiling: the same receiver, no broker running
        sink.got.clear()
        per_endpoint = Settings().notifier_concurrency
        n = res.fanout_expected or FANOUT_SUBS * FANOUT_WRITES
        await asyncio.wrap_future(
            runner.pool.submit(bare, sink.port, res.sample, FANOUT_SUBS, n, per_endpoint)
        )
        await sink.wait_for(n)  # (stragglers of the notifier are not counted)
        arrivals = [t for t, q, _ in sink.got if q.startswith("s=bare")]
        res.ceiling_sent = len(arrivals)
        res.ceiling_seconds = max(arrivals) - min(arrivals) if len(arrivals) > 1 else 0.0
    finally:
        await sink.stop()
    return res


@contextmanager
def _servers(env: dict[str, str], port: int) -> Iterator[dict[str, int]]:
    """The broker's processes (role → pid), answering HTTP. ``production``: ``city-os api``,
    ``city-os relay`` and ``city-os notifier`` with a port each; ``serve``: one process."""
    api_env = dict(env, CITYOS_RELAY_ENABLED="true", CITYOS_NOTIFIER_ENABLED="true")
    if TOPOLOGY == "serve":
        with stack.running("api+relay+notifier", stack.api_commands(1), api_env, port) as srv:
            yield {"serve": srv.pids[0]}
        return
    ports = {"relay": stack.free_port(), "notifier": stack.free_port()}
    workers = [
        stack.start([[str(stack.BIN / "city-os"), role]], dict(env, CITYOS_PORT=str(ports[role])))
        for role in ("relay", "notifier")
    ]
    try:
        for procs, role in zip(workers, ("relay", "notifier"), strict=True):
            stack.wait_http(ports[role], "/health", procs, timeout=120)
        with stack.running("api", [[str(stack.BIN / "city-os"), "api"]], env, port) as srv:
            yield {"api": srv.pids[0], "relay": workers[0][0].pid, "notifier": workers[1][0].pid,
                   "relay-port": ports["relay"], "notifier-port": ports["notifier"]}  # fmt: skip
    finally:
        for procs in workers:
            stack.stop(procs)


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    snap = stack.cpu_snapshot()
    return {role: snap.get(pid, ("", 0.0))[1] for role, pid in pids.items() if role in _ROLES}


_ROLES = ("serve", "api", "relay", "notifier")


async def _through_broker(
    runner: Runner, dsn: str, bootstrap: str, sink: Sink, res: NotifyResults
) -> None:
    port = stack.free_port()
    env = stack.server_env(dsn, port, runner.args.pool)
    env.update(CITYOS_KAFKA_BOOTSTRAP=bootstrap, CITYOS_OUTBOUND_ALLOW="loopback")
    with _servers(env, port) as pids:
        ready = pids.get("notifier-port", port)  # whose /ready reports the notifier
        relay = pids.get("relay-port", port)
        notifier_pid = pids.get("notifier", pids.get("serve", 0))
        async with aiohttp.ClientSession() as http:
            await post_batches(port, "nb-", ENTITIES)
            for k in range(SUBSCRIPTIONS):
                ids = range(k * ENTITIES // SUBSCRIPTIONS, (k + 1) * ENTITIES // SUBSCRIPTIONS)
                await _subscribe(http, port, {
                    "type": "Subscription",
                    "entities": [{"id": entity_id("nb-", i), "type": ENTITY_TYPE} for i in ids],
                    "watchedAttributes": ["temperature"],
                    "notification": {
                        "format": "keyValues", "attributes": ["temperature"],
                        "endpoint": {"uri": f"http://127.0.0.1:{sink.port}/n?s=l{k}"},
                    },
                })  # fmt: skip
            await _indexed(http, ready, SUBSCRIPTIONS)
            await _caught_up(http, relay, ready)
            res.load1 = await asyncio.to_thread(guard.wait_quiet, "notify latency")
            sink.got.clear()
            n = int(RATE * SECONDS)
            plan = Paced("nb-", "temperature", n, RATE, ENTITIES, CONNECTIONS)
            spy = None
            if runner.args.profile:  # the notifier during the paced updates (--profile)
                spy = profile.start(notifier_pid, SECONDS, PROFILE_LATENCY)
            before = _cpu(pids)
            done = await asyncio.wrap_future(runner.pool.submit(paced_patches, port, plan))
            await sink.wait_for(sum(1 for _, s, _ in done if s == 204))
            after = _cpu(pids)
            if spy is not None:
                await asyncio.to_thread(spy.wait)
                res.latency_profile = profile.summarise(PROFILE_LATENCY, top=25)
            res.cpu = {role: after[role] - before.get(role, 0.0) for role in after}
            _latency(res, done, sink.got)

            for k in range(FANOUT_SUBS):
                await _subscribe(http, port, {
                    "type": "Subscription",
                    "entities": [{"type": ENTITY_TYPE}],
                    "watchedAttributes": ["pm25"],
                    "notification": {
                        "format": "keyValues", "attributes": ["pm25"],
                        "endpoint": {"uri": f"http://127.0.0.1:{sink.port}/n?s=f{k}"},
                    },
                })  # fmt: skip
            await _indexed(http, ready, SUBSCRIPTIONS + FANOUT_SUBS)
            await _caught_up(http, relay, ready)
            res.fanout_load1 = await asyncio.to_thread(guard.wait_quiet, "notify fan-out")
            sink.got.clear()
            if runner.args.profile:  # the notifier during the fan-out (--profile)
                spy = profile.start(notifier_pid, PROFILE_SECONDS, PROFILE_OUT)
            plan = Paced("nb-", "pm25", FANOUT_WRITES, 0.0, ENTITIES, CONNECTIONS)
            done = await asyncio.wrap_future(runner.pool.submit(paced_patches, port, plan))
            res.fanout_expected = FANOUT_SUBS * sum(1 for _, s, _ in done if s == 204)
            await sink.wait_for(res.fanout_expected, TIMEOUT * 2)
            if spy is not None:
                await asyncio.to_thread(spy.wait)
                res.profile = profile.summarise(PROFILE_OUT, top=25)
            arrivals = [t for t, _, _ in sink.got]
            res.fanout_received = len(arrivals)
            if len(arrivals) > 1:
                res.fanout_seconds = max(arrivals) - min(arrivals)
            res.sample = sink.got[0][2] if sink.got else b"{}"


def print_results(res: NotifyResults) -> None:
    ms = 1000.0
    rate = res.writes / res.write_seconds if res.write_seconds else 0.0
    p99 = pct(res.latency, 0.99) * ms
    verdict = "PASS" if p99 <= P99_TARGET_MS and res.lost == 0 else "MISS"
    where = (
        "city-os api, city-os relay and city-os notifier, one process each, as deployed"
        if res.topology != "serve"
        else "relay and notifier inside city-os serve, one process"
    )
    cpu = ", ".join(f"{role} {used:.2f}" for role, used in res.cpu.items())
    print(
        f"\nNotifications through Tansu ({where}; load1 {res.load1:.2f}):\n"
        f"  latency: {res.writes} partial updates at {rate:.0f}/s achieved (target {RATE:.0f}/s,"
        f" {res.write_errors} errors), {SUBSCRIPTIONS} subscriptions, one match per update\n"
        f"    write's 204 → arrival  p50 {pct(res.latency, 0.5) * ms:6.1f} ms  p99 {p99:6.1f} ms"
        f"  max {max(res.latency, default=float('nan')) * ms:6.1f} ms  lost {res.lost}"
        f"  duplicates {res.duplicates}  target p99 ≤ {P99_TARGET_MS:.0f} ms, 0 lost  {verdict}\n"
        f"    204 → notifiedAt (relay, Kafka, fetch, match)  p50 {pct(res.upstream, 0.5) * ms:6.1f}"
        f" ms  p99 {pct(res.upstream, 0.99) * ms:6.1f} ms;  notifiedAt → arrival (store, queue,"
        f" HTTP)  p50 {pct(res.downstream, 0.5) * ms:6.1f} ms  p99"
        f" {pct(res.downstream, 0.99) * ms:6.1f} ms\n"
        f"    CPU seconds over the window: {cpu}"
    )
    fan = res.fanout_received / res.fanout_seconds if res.fanout_seconds else 0.0
    ceiling = res.ceiling_sent / res.ceiling_seconds if res.ceiling_seconds else 0.0
    verdict = "PASS" if fan >= FANOUT_TARGET else "MISS"
    print(
        f"  fan-out: {FANOUT_SUBS} subscriptions × {FANOUT_WRITES} updates: "
        f"{res.fanout_received}/{res.fanout_expected} delivered, {fan:,.0f} notifications/s "
        f"(first → last arrival; load1 {res.fanout_load1:.2f})  target ≥ {FANOUT_TARGET:,.0f}/s "
        f"{verdict}\n"
        f"    ceiling: a bare aiohttp client posting {res.ceiling_sent} bodies to the same "
        f"receiver: {ceiling:,.0f}/s (ratio {fan / ceiling if ceiling else 0:.2f})"
    )
    if res.latency_profile:
        print("  latency profile of the notifier process (py-spy):", *res.latency_profile, sep="\n")
    if res.profile:
        print("  fan-out profile of the notifier process (py-spy):", *res.profile, sep="\n")
