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
