"""Measuring one load: in the load client's process, on a quiet machine, with the CPU split.

Layer: bench/. ``Runner`` owns the client process (spawned once); every measured run waits for
other engineers' test runs to finish (``guard``), records the 1-minute load average, and takes CPU
snapshots (and, with ``--profile``, py-spy samples) over the measured window only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import guard, profile, stack
from bench.ceilings import Statement, run_db, run_sql
from bench.loadgen import LoadResult, client_process, run_load
from bench.workload import Scenario


@dataclass
class Measured:
    result: LoadResult
    cpu: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)
    load1: float = 0.0  # 1-minute load average just before the run


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loads: list[float] = []  # 1-minute load average before each measured run
        self.pool = client_process()
        self.client_pid = self.pool.submit(os.getpid).result()
        self.tmp = Path(tempfile.mkdtemp(prefix="cityos-bench-"))

    def measure(
        self,
        fn: object,
        call: tuple[object, ...],
        server_pids: list[int],
        name: str,
        prof_pid: int | None = None,
    ) -> Measured:
        """Run one load in the client process; CPU snapshots (and py-spy) cover the measured
        window only, taken from timers because short-lived processes (the asyncpg ceiling's
        backends) are gone once the call returns."""
        load1 = guard.wait_quiet(name)
        self.loads.append(load1)
        box: dict[str, Any] = {}

        def open_window() -> None:
            box["t0"], box["cpu0"] = time.monotonic(), stack.cpu_snapshot()
            if prof_pid is not None:
                box["out"] = self.tmp / f"{name}.txt"
                box["spy"] = profile.start(prof_pid, self.args.duration - 0.5, box["out"])

        def close_window() -> None:
            box["t1"], box["cpu1"] = time.monotonic(), stack.cpu_snapshot()

        start = self.args.warmup + 0.2
        timers = [
            threading.Timer(start, open_window),
            threading.Timer(start + self.args.duration - 0.4, close_window),
        ]
        for t in timers:
            t.start()
        result: LoadResult = self.pool.submit(fn, *call).result()  # type: ignore[arg-type]
        for t in timers:
            t.join()
        m = Measured(result, load1=load1)
        m.cpu = stack.cpu_split(
            box["cpu0"], box["cpu1"], box["t1"] - box["t0"], server_pids, self.client_pid
        )
        if "spy" in box:
            box["spy"].wait(timeout=30)
            m.profile = profile.summarise(box["out"])
        return m

    def http(
        self,
        port: int,
        sc: Scenario,
        pids: list[int],
        name: str,
        prof: int | None = None,
        concurrency: int | None = None,
    ) -> Measured:
        a = self.args
        call = ("127.0.0.1", port, sc, concurrency or a.concurrency, a.warmup, a.duration)
        return self.measure(run_load, call, pids, name, prof)

    def db(self, dsn: str, sc: Scenario, name: str) -> Measured:
        a = self.args
        call = (dsn, sc, a.concurrency, a.pool, a.warmup, a.duration)
        return self.measure(run_db, call, [], name)

    def sql(self, dsn: str, statements: list[Statement], name: str, concurrency: int) -> Measured:
        a = self.args
        call = (dsn, statements, concurrency, a.pool, a.warmup, a.duration)
        return self.measure(run_sql, call, [], name)


# ------------------------------------------------------------------ paired runs, their report


def cpu_per_op(m: Measured) -> dict[str, float]:
    """CPU µs per operation by role (server, postgres, client, other) over the window."""
    rate = m.result.rate()
    return {role: 1e6 * cores / rate if rate else 0.0 for role, cores in m.cpu.items()}


def describe(m: Measured) -> str:
    """One run: throughput, latency, errors, server and PostgreSQL CPU per operation, load."""
    r, per = m.result, cpu_per_op(m)
    return (
        f"{r.rate():>7.0f} ops/s  p50 {r.p50_ms:6.1f}  p95 {r.p95_ms:6.1f}  p99 {r.p99_ms:6.1f}"
        f" ms  errors {r.errors}  CPU/op server {per.get('server', 0.0):5.0f} µs + postgres "
        f"{per.get('postgres', 0.0):5.0f} µs  load1 {m.load1:.2f}"
        + (f"  statuses {r.statuses}" if r.errors else "")
    )


@dataclass(frozen=True)
class Pair:
    """The same load measured twice, one run right after the other: ``base`` without the
    feature (authentication off, an unrestricted caller), ``with_`` with it."""

    base: Measured
    with_: Measured

    def time_cost(self) -> float:
        """Extra time per request at the same concurrency (a throughput ratio)."""
        b, w = self.base.result.rate(), self.with_.result.rate()
        return b / w - 1 if w else float("inf")

    def p95_cost(self) -> float:
        b, w = self.base.result.p95_ms, self.with_.result.p95_ms
        return w / b - 1 if b else float("inf")

    def cpu_cost(self) -> float:
        """Extra server + PostgreSQL CPU per operation: the figure a loaded machine blurs
        least."""
        b, w = cpu_per_op(self.base), cpu_per_op(self.with_)
        base = b.get("server", 0.0) + b.get("postgres", 0.0)
        with_ = w.get("server", 0.0) + w.get("postgres", 0.0)
        return with_ / base - 1 if base else float("inf")

    def report(
        self, label: str, names: tuple[str, str], cost: float, what: str, target: float
    ) -> list[str]:
        """Both runs and the verdict of ``cost`` (one of the costs above) against ``target``."""
        lines = [f"  {label} {name:<13} {describe(m)}" for name, m in zip(names, self, strict=True)]
        ok = cost <= target and not self.with_.result.errors
        lines.append(
            f"  {label} {what} {100 * cost:+.1f} % (CPU/op {100 * self.cpu_cost():+.1f} %); "
            f"target ≤ +{100 * target:.0f} %  {'PASS' if ok else 'MISS'}"
        )
        return lines

    def __iter__(self) -> Iterator[Measured]:
        return iter((self.base, self.with_))
