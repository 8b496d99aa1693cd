"""``python -m bench`` (``make bench``): start the stack, run the scenarios, print the report.

Order: API scenarios against `city-os serve`, then the same requests against the minimal aiohttp
app (HTTP ceiling) and the null server (load client's own ceiling), then the raw asyncpg ceiling.
Exit code 0 even when targets are missed: it is a report; misses are printed as MISS.
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

from bench import profile, stack
from bench.ceilings import run_db
from bench.loadgen import LoadResult, client_process, run_load
from bench.workload import Scenario
from city_os.config import Settings

# Targets on the reference machine (2 cores): operations per second, entities/s for batch.
TARGETS = {"create": 1500, "retrieve": 3000, "update": 1500, "batch": 10000}
LABELS = {
    "create": "create (POST /entities)",
    "retrieve": "retrieve by id (GET)",
    "update": "partial update (PATCH attr)",
    "batch": "batch create x100 (entities/s)",
}
KINDS = list(TARGETS)


@dataclass
class Measured:
    result: LoadResult
    cpu: dict[str, float] = field(default_factory=dict)
    profile: list[str] = field(default_factory=list)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
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
        m = Measured(result)
        m.cpu = stack.cpu_split(
            box["cpu0"], box["cpu1"], box["t1"] - box["t0"], server_pids, self.client_pid
        )
        if "spy" in box:
            box["spy"].wait(timeout=30)
            m.profile = profile.summarise(box["out"])
        return m

    def http(
        self, port: int, sc: Scenario, pids: list[int], name: str, prof: int | None = None
    ) -> Measured:
        a = self.args
        call = ("127.0.0.1", port, sc, a.concurrency, a.warmup, a.duration)
        return self.measure(run_load, call, pids, name, prof)

    def db(self, dsn: str, sc: Scenario, name: str) -> Measured:
        a = self.args
        call = (dsn, sc, a.concurrency, a.pool, a.warmup, a.duration)
        return self.measure(run_db, call, [], name)


def _scenarios(kinds: list[str], prefix: str, run: object) -> dict[str, Measured]:
    """Run kinds in order; reads and updates use the ids the create scenario made."""
    out: dict[str, Measured] = {}
    existing = 0
    for kind in kinds:
        sc = Scenario(
            kind, prefix=f"{prefix}{kind[0]}-", seed_prefix=f"{prefix}c-", existing=existing or 1000
        )
        out[kind] = run(sc)  # type: ignore[operator]
        if kind == "create":
            existing = out[kind].result.sent
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds per run")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes; >1 runs bench.reuseport workers sharing the port",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=Settings().db_pool_max,
        help="PostgreSQL pool size (split over workers; same for the db ceiling)",
    )
    parser.add_argument("--only", nargs="+", choices=KINDS, default=KINDS, metavar="SCENARIO")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API server with py-spy and print hot spots per scenario",
    )
    parser.add_argument("--no-ceilings", action="store_true", help="API scenarios only")
    args = parser.parse_args()
    kinds = [k for k in KINDS if k in args.only]
    if any(k in kinds for k in ("retrieve", "update")) and "create" not in kinds:
        kinds.insert(0, "create")  # reads and updates need the entities it creates

    started = time.monotonic()
    base = Settings.from_env().database_url
    dsn = stack.run_sync(stack.recreate_database(base))
    assert isinstance(dsn, str)
    stack.migrate(dsn)
    stack.run_sync(stack.prepare_raw_table(dsn))
    runner = Runner(args)
    print(
        f"bench: {os.cpu_count()} CPU cores, {args.concurrency} connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per run, database {dsn}"
    )

    # --- the API
    port = stack.free_port()
    env = stack.server_env(dsn, port, max(1, args.pool // args.workers))
    with stack.running("api", stack.api_commands(args.workers), env, port) as srv:
        uvloop = srv.uses_uvloop()
        prof = srv.pids[0] if args.profile else None
        api = _scenarios(
            kinds, "a", lambda sc: runner.http(port, sc, srv.pids, f"api-{sc.kind}", prof)
        )

    http: dict[str, Measured] = {}
    db: dict[str, Measured] = {}
    client: Measured | None = None
    if not args.no_ceilings:
        port = stack.free_port()
        with stack.running("http", stack.ceiling_command("http", port), env, port) as srv:
            http = _scenarios(
                kinds, "h", lambda sc: runner.http(port, sc, srv.pids, f"http-{sc.kind}")
            )
        port = stack.free_port()
        with stack.running("null", stack.ceiling_command("null", port), env, port) as srv:
            client = runner.http(port, Scenario("create", prefix="n"), srv.pids, "null")
        db = _scenarios(kinds, "d", lambda sc: runner.db(dsn, sc, f"db-{sc.kind}"))
    runner.pool.shutdown()

    from bench.report import print_report

    print_report(kinds, api, http, db, client, args, uvloop, TARGETS, LABELS)
    print(f"total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
