"""``python -m bench`` (``make bench``): start the stack, run the scenarios, print the report.

Groups (``--only``, comma- or space-separated; all but ``stellio`` by default):

* ``foundation``: create, retrieve, partial update, batch create against `city-os serve`, then
  the same requests against the minimal aiohttp app (HTTP ceiling), the null server (the load
  client's own ceiling) and raw asyncpg (``create`` … ``batch`` select single ones);
* ``query``: 100,000 entities loaded, four queries next to their SQL (``bench.query``);
* ``validation``: creates with a JSON Schema inactive and active (``bench.validation``);
* ``lag``: change events through Tansu, foundation writes with the relay on, relay drain
  (``bench.lag``);
* ``relay``: partial updates with the relay off, then with it on and a consumer attached, and
  their ratio (``bench.relay_cost``);
* ``full``: create, retrieve, partial update and batch create with everything on (relay,
  notifier with 100 subscriptions, history capture, an active JSON Schema) beside same-run
  ceilings (``bench.full``).
* ``writecost``: PostgreSQL CPU per create, partial update and batch entity, with history
  capture and attr_values triggers each on and off, alternating (``bench.statement_cpu``; no
  HTTP, backend CPU time: robust to other load).
* ``contexts``: the server's RSS after 1,000 distinct remote @contexts next to the configured
  cache bound (``bench.contexts``);
* ``health``: ``/health``'s slowest poll while each of the most expensive accepted requests
  runs, its own time (run-queue waits off) next to the idle broker's (``bench.health``);
* ``evaluate``: the notifier's in-process selection evaluation, µs per entity next to an empty
  call and a hand-written check (``bench.evaluate``; no server).
* ``notify``: notification latency (p50/p99 at 500 updates/s, 100 subscriptions) and HTTP
  fan-out next to a bare aiohttp client's ceiling, through Tansu (``bench.notify``).
* ``auth``: create and retrieve with bearer-token verification on and off (``bench.auth``).
* ``temporal``: 1,000,000 attribute instances, a range, an hourly avg, an hourly max over 100
  entities next to their SQL; storage per instance; history capture cost (``bench.temporal``).
* ``stellio``: Stellio's load-test scenarios at 1,000 / 10,000 / 100,000 entities beside
  Stellio's published figures and same-run ceilings (``bench.stellio``; ``--stellio-sizes``).
* ``ngsiv2``: v2 create, retrieve, attribute update and op/update next to their NGSI-LD
  counterparts on the same server (``bench.ngsiv2``).
* ``enforce``: the query scenarios with permissions active next to the unrestricted query
  (``bench.enforce``).
* ``federation``: a query fanned out to 3 context sources of 10,000 entities each next to the
  same query on one broker holding all 30,000 (``bench.federation``).

Every measured run first waits for other engineers' robot / pytest runs (``bench.guard``).
Exit code 0 even when targets are missed: it is a report; misses are printed as MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import guard, stack
from bench.report import LABELS, TARGETS
from bench.runner import Measured, Runner
from bench.workload import Scenario
from city_os.config import Settings

KINDS = list(TARGETS)


@dataclass
class Ctx:
    """What a group's run gets: the runner, the arguments, the database and, for the groups on
    the shared API server, its port and process ids."""

    runner: Runner
    args: argparse.Namespace
    dsn: str
    port: int = 0
    pids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Group:
    """One bench group: ``bench.<module>``'s ``run`` called through ``run(module, ctx)``, its
    result printed by ``show(module, result)``. ``on_api`` groups share one ``city-os serve``
    (own tenants or prefixes); ``after`` runs once that server is stopped (same-run ceilings)."""

    name: str
    module: str
    run: Callable[[Any, Ctx], object]
    on_api: bool = False
    needs_db: bool = True
    show: Callable[[Any, Any], None] = lambda m, res: m.print_results(res)
    after: Callable[[Any, Ctx, Any], None] | None = None


def _evaluate(m: Any, c: Ctx) -> object:
    load = guard.wait_quiet("evaluate")
    return (m.run(), load)


def _stellio_ceiling(m: Any, c: Ctx, res: Any) -> None:
    if not c.args.no_ceilings:
        res.http = m.run_http_ceiling(c.runner, 1000)


# In the order the report prints them; the groups on the API server run first.
TABLE = [
    Group("query", "query", lambda m, c: m.run(c.runner, c.port, c.pids, c.dsn, c.args.explain),
          on_api=True),
    Group("validation", "validation", lambda m, c: m.run(c.runner, c.port, c.pids), on_api=True),
    Group("lag", "lag", lambda m, c: asyncio.run(m.run(c.runner, c.dsn))),
    Group("notify", "notify", lambda m, c: asyncio.run(m.run(c.runner, c.dsn))),
    Group("relay", "relay_cost", lambda m, c: asyncio.run(m.run(c.runner, c.dsn))),
    Group("full", "full", lambda m, c: m.run(c.runner, c.dsn)),
    Group("writecost", "statement_cpu", lambda m, c: asyncio.run(m.run(c.dsn))),
    Group("contexts", "contexts", lambda m, c: m.run(c.dsn)),
    Group("health", "health", lambda m, c: m.run(c.dsn)),
    Group("evaluate", "evaluate", _evaluate, needs_db=False,
          show=lambda m, res: m.print_results(*res)),
    Group("auth", "auth", lambda m, c: m.run(c.runner, c.dsn, c.args.pool)),
    Group("temporal", "temporal", lambda m, c: m.run(c.runner, c.port, c.pids, c.dsn),
          on_api=True),
    Group("stellio", "stellio",
          lambda m, c: m.run(c.runner, c.port, c.pids, c.dsn,
                             [int(n) for n in c.args.stellio_sizes.split(",")]),
          on_api=True, after=_stellio_ceiling),
    Group("ngsiv2", "ngsiv2", lambda m, c: m.run(c.runner, c.port, c.pids), on_api=True),
    Group("enforce", "enforce", lambda m, c: m.run(c.runner, c.dsn, c.args.pool)),
    Group("federation", "federation", lambda m, c: m.run(c.dsn)),
]  # fmt: skip
GROUPS = ["foundation", *(g.name for g in TABLE)]
DEFAULT_OFF = {"stellio"}  # on request (a few minutes)


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


def _selection(raw: list[str]) -> tuple[list[str], list[str]]:
    """``--only`` words → (foundation kinds, other groups), in the order they run."""
    words = {w for item in raw for w in item.replace(",", " ").split()}
    unknown = words - set(KINDS) - set(GROUPS)
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(sorted(unknown))}; use {GROUPS + KINDS}")
    kinds = KINDS if "foundation" in words else [k for k in KINDS if k in words]
    if any(k in kinds for k in ("retrieve", "update")) and "create" not in kinds:
        kinds.insert(0, "create")  # reads and updates need the entities it creates
    return kinds, [g for g in GROUPS[1:] if g in words]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--concurrency", type=int, default=32, help="connections (default 32)")
    parser.add_argument(
        "--query-concurrency", type=int, default=8, help="connections of the query scenarios"
    )
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds per run")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes (default 1, as CITYOS_WORKERS; 2 = one per core here); >1 runs "
        "bench.reuseport workers sharing the port",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=Settings().db_pool_max,
        help="PostgreSQL pool size (split over workers; same for the db ceiling)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[g for g in GROUPS if g not in DEFAULT_OFF],
        metavar="GROUP",
        help=f"any of {', '.join(GROUPS)} (or single foundation scenarios: {', '.join(KINDS)})",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API server with py-spy and print hot spots per foundation scenario",
    )
    parser.add_argument("--no-ceilings", action="store_true", help="API scenarios only")
    parser.add_argument(
        "--stellio-sizes",
        default="1000,10000,100000",
        help="entity counts of the stellio group, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the query plans of every query scenario"
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="do not wait for robot / pytest runs (to try the bench itself; numbers unreliable)",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    kinds, names = _selection(args.only)
    groups = [g for g in TABLE if g.name in names]
    guard.enabled = not args.no_wait

    started = time.monotonic()
    dsn = ""
    if kinds or any(g.needs_db for g in groups):
        base = Settings.from_env().database_url
        dsn = stack.run_sync(stack.recreate_database(base))
        assert isinstance(dsn, str)
        stack.migrate(dsn)
        stack.run_sync(stack.prepare_raw_table(dsn))
    runner = Runner(args)
    print(
        f"bench: {os.cpu_count()} CPU cores, {args.concurrency} connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured per run, "
        f"database {dsn or 'none'}, "
        f"load average {guard.load1():.2f} at start"
    )
    modules = {g.name: importlib.import_module(f"bench.{g.module}") for g in groups}
    results: dict[str, object] = {}
    ctx = Ctx(runner, args, dsn)

    # --- the API: foundation and the on_api groups share one server (own tenants)
    api: dict[str, Measured] = {}
    uvloop = False
    on_api = [g for g in groups if g.on_api]
    if kinds or on_api:
        port = stack.free_port()
        env = stack.server_env(dsn, port, max(1, args.pool // args.workers))
        with stack.running("api", stack.api_commands(args.workers), env, port) as srv:
            uvloop = srv.uses_uvloop()
            prof = srv.pids[0] if args.profile else None
            api = _scenarios(
                kinds, "a", lambda sc: runner.http(port, sc, srv.pids, f"api-{sc.kind}", prof)
            )
            ctx.port, ctx.pids = port, srv.pids
            for g in on_api:
                results[g.name] = g.run(modules[g.name], ctx)
        ctx.port, ctx.pids = 0, []
        for g in on_api:
            if g.after is not None:
                g.after(modules[g.name], ctx, results[g.name])

    http: dict[str, Measured] = {}
    db: dict[str, Measured] = {}
    client: Measured | None = None
    if kinds and not args.no_ceilings:
        port = stack.free_port()
        env = stack.server_env(dsn, port, args.pool)
        with stack.running("http", stack.ceiling_command("http", port), env, port) as srv:
            http = _scenarios(
                kinds, "h", lambda sc: runner.http(port, sc, srv.pids, f"http-{sc.kind}")
            )
        port = stack.free_port()
        with stack.running("null", stack.ceiling_command("null", port), env, port) as srv:
            client = runner.http(port, Scenario("create", prefix="n"), srv.pids, "null")
        db = _scenarios(kinds, "d", lambda sc: runner.db(dsn, sc, f"db-{sc.kind}"))

    for g in groups:
        if not g.on_api:
            results[g.name] = g.run(modules[g.name], ctx)
    runner.pool.shutdown()

    from bench.report import print_report

    if kinds:
        print_report(kinds, api, http, db, client, args, uvloop, TARGETS, LABELS)
    for g in groups:
        if results.get(g.name) is not None:
            g.show(modules[g.name], results[g.name])
    loads = runner.loads
    if loads:
        print(
            f"\n1-minute load average before the measured runs: {min(loads):.2f}–{max(loads):.2f}"
            f" (now {guard.load1():.2f}; {os.cpu_count()} cores)"
        )
    print(f"total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
