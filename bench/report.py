"""The printed report: one row per scenario, ceilings, CPU split and (with --profile) hot spots."""

from __future__ import annotations

import argparse
from typing import Any

from bench.workload import BATCH_SIZE

# Targets on the reference machine (2 cores): operations per second, entities/s for batch.
TARGETS = {"create": 1500, "retrieve": 3000, "update": 1500, "batch": 10000}
LABELS = {
    "create": "create (POST /entities)",
    "retrieve": "retrieve by id (GET)",
    "update": "partial update (PATCH attr)",
    "batch": "batch create x100 (entities/s)",
}


def _rate(m: Any, kind: str) -> float:
    return m.result.rate(BATCH_SIZE if kind == "batch" else 1) if m is not None else 0.0


def print_report(
    kinds: list[str],
    api: dict[str, Any],
    http: dict[str, Any],
    db: dict[str, Any],
    client: Any,
    args: argparse.Namespace,
    uvloop: bool,
    targets: dict[str, int],
    labels: dict[str, str],
) -> None:
    workers = f"{args.workers} worker process" + ("es (SO_REUSEPORT)" if args.workers > 1 else "")
    print(
        f"\nAPI server: city-os serve, {workers}, uvloop {'yes' if uvloop else 'NO'}, "
        f"pool {args.pool}"
    )
    print("ops/s = completed requests per second with the expected status (batch: entities/s);")
    print(
        "ceilings: 'aiohttp' = minimal aiohttp handler answering the same requests, 'asyncpg' = "
        "raw asyncpg on a plain jsonb table; ratio = API / lower ceiling.\n"
    )
    head = (
        f"{'scenario':<31}{'ops/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'aiohttp':>9}{'asyncpg':>9}{'ratio':>7}{'target':>8}  verdict"
    )
    print(head)
    print("-" * len(head))
    for kind in kinds:
        m = api[kind]
        ops = _rate(m, kind)
        ceil = [c for c in (_rate(http.get(kind), kind), _rate(db.get(kind), kind)) if c]
        ratio = f"{ops / min(ceil):.2f}" if ceil else "-"
        verdict = "PASS" if ops >= targets[kind] else "MISS"
        print(
            f"{labels[kind]:<31}{ops:>8.0f}{m.result.p50_ms:>8.1f}{m.result.p99_ms:>8.1f}"
            f"{m.result.errors:>7}{_rate(http.get(kind), kind):>9.0f}"
            f"{_rate(db.get(kind), kind):>9.0f}{ratio:>7}{targets[kind]:>8}  {verdict}"
        )
    print(
        "\nCPU used during each measured window, in cores (machine total = "
        "cores listed above), and CPU time per operation (robust to other load):"
    )
    for name, runs in (("API", api), ("aiohttp ceiling", http), ("asyncpg ceiling", db)):
        for kind in kinds:
            if kind in runs:
                c, rate = runs[kind].cpu, _rate(runs[kind], kind)
                us = {k: 1e6 * v / rate if rate else 0.0 for k, v in c.items()}
                print(
                    f"  {name:<16}{kind:<9} server {c['server']:.2f}  postgres "
                    f"{c['postgres']:.2f}  client {c['client']:.2f}  other {c['other']:.2f}"
                    f"   | per {'entity' if kind == 'batch' else 'op'}: server "
                    f"{us['server']:.0f} µs, postgres {us['postgres']:.0f} µs"
                )
    if client is not None:
        r = client.result
        per_req = r.client_cpu / r.rate() * 1e6 if r.rate() else 0.0
        print(
            f"\nload client ceiling (create requests against a null server, same process, "
            f"{args.concurrency} connections): {r.rate():.0f} req/s, client CPU "
            f"{per_req:.0f} µs/request (≈ {1e6 / per_req if per_req else 0:.0f} req/s per "
            f"core); null server used {client.cpu['server']:.2f} cores"
        )
    busy = max(
        (r.cpu.get("other", 0.0) for runs in (api, http, db) for r in runs.values()), default=0.0
    )
    if busy > 0.25:
        print(
            f"NOTE: other processes on this machine used up to {busy:.2f} cores during the runs "
            "(column 'other'): the results are lower than on an idle machine"
        )
    bottleneck = [k for k in kinds if api[k].cpu.get("client", 0) > 0.9]
    if bottleneck:
        print(
            f"WARNING: the load client used > 0.9 core in {', '.join(bottleneck)}: "
            "it may be the bottleneck there"
        )
    for kind in kinds:
        if api[kind].result.errors:
            print(f"{kind}: statuses {api[kind].result.statuses}")
    if any(api[k].profile for k in kinds):
        print("\nWhere the API server spends its time (py-spy, first worker):")
        for kind in kinds:
            print(f"- {labels[kind]}")
            for line in api[kind].profile:
                print(line)
    misses = [k for k in kinds if _rate(api[k], k) < targets[k]]
    print(
        f"\nRESULT: {len(kinds) - len(misses)}/{len(kinds)} targets met"
        + (f"; MISS: {', '.join(misses)}" if misses else "")
    )
