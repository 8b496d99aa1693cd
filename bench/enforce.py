"""Cost of access enforcement on queries (issue "Access control", phase 2): the query scenarios
over 100,000 entities with permissions active, as a ratio to the same queries unrestricted.

Layer: bench/. One ``city-os serve`` with authentication on trusts a static OIDC issuer
(``bench.issuer``). The query data set (``bench.dataset``, ``bench.query``'s cases, loaded,
indexed and analysed by ``bench.query``'s helpers) is loaded by a tenant admin. Two tokens then
send the same queries: the admin's (a role: the readable scope is "everything", no predicate at
all — the unrestricted query) and a user's with no role, readable through permissions only: a
type permission for every type of the data set and one entity permission, so the SQL carries
the whole readable-scope predicate (the granted types, no data subject, or an entity permission;
``store/postgres/auth_scope_sql.py``) yet selects the same entities. Each query is first checked
to give both callers the same count; the runs of a case follow each other in the order
unrestricted, permissions, permissions, unrestricted (ABBA: a load that rises or falls during
the case weighs on both states alike), and each state is judged by its run with the lower p95,
the one the machine's other users disturbed least (``bench.runner.Pair``; every run's p95 is
printed). Target: p95 with permissions within 20 % of the unrestricted p95; CPU per query
(server and PostgreSQL, the figure a loaded machine blurs least) printed beside it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from bench import dataset, guard, issuer, query, stack
from bench.query import CASES, LIMIT, LOAD_BATCH, QUERY_TYPE
from bench.runner import Measured, Pair, Runner
from bench.workload import Scenario
from city_os.auth.policy import Action, Permission, readable
from city_os.auth.principal import Principal, subject_key
from city_os.core.contexts import bundled_documents
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.store.postgres.query import Visible

TENANT = "bench-enforce"
TARGET = 0.20  # p95 with permissions within 20 % of the unrestricted query
STATES = ("unrestricted", "permissions")
CALLERS = {"unrestricted": ("admin", [f"admin@{TENANT}"]), "permissions": ("user", [])}


@dataclass
class EnforceResults:
    loaded: int = 0
    load_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    runs: dict[tuple[str, str], list[Measured]] = field(default_factory=dict)  # (case, state)
    plans: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # --explain


async def _prepare(port: int, idp: issuer.Issuer, dsn: str) -> tuple[float, int]:
    """Load the data set as the admin, grant the user read on it by permissions, build the
    value index, then VACUUM ANALYZE (as the query group does)."""
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {idp.tokens['unrestricted']}", "NGSILD-Tenant": TENANT}
    seconds, loaded = await query.load(port, admin)
    user = {"kind": "subject", "value": "user", "issuer": idp.url}
    grants = [
        {"assignee": user, "action": "read", "target": {"types": [*dataset.TYPES, "District"]}},
        {"assignee": user, "action": "read", "target": {"entity": dataset.parent_id(1)}},
    ]
    async with aiohttp.ClientSession() as http:
        for body in grants:
            async with http.post(f"{base}/cityos/v1/permissions", json=body, headers=admin) as r:
                if r.status != 201:
                    raise SystemExit(f"enforce grant: {r.status} {await r.text()}")
    await query.value_index(port, admin)
    await query.tenant_schema(dsn, TENANT)
    return seconds, loaded


async def _count(port: int, path: str, token: str) -> int:
    url = f"http://127.0.0.1:{port}{path}&count=true"
    headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": TENANT}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        if resp.status != 200:
            raise SystemExit(f"enforce query: {resp.status} {await resp.text()}")
        return int(resp.headers["NGSILD-Results-Count"])


def _plans(dsn: str, url: str) -> dict[tuple[str, str], list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every case, unrestricted and with the user's readable
    scope (the type permission of ``_prepare``; its entity permission is looked up in SQL)."""
    schema = asyncio.run(query.tenant_schema(dsn, TENANT))
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    granted = frozenset(terms.expand_type(t) for t in (*dataset.TYPES, "District"))
    user = subject_key(url, "user")
    scope = readable(
        Principal(subject="user", issuer=url),
        TENANT,
        [Permission("bench", user, Action.READ, types=granted)],
    )
    plans = {}
    for case in CASES:
        for state, visible in (("unrestricted", None), ("permissions", Visible(scope, TENANT))):
            stmts = query.statements(case, schema, visible)
            plans[(case.key, state)] = asyncio.run(query.explain(dsn, stmts))
    return plans


def run(runner: Runner, dsn: str, pool: int) -> EnforceResults:
    res = EnforceResults()
    with issuer.serving(CALLERS) as idp:
        port = stack.free_port()
        env = {**stack.server_env(dsn, port, pool), **idp.env()}
        with stack.running("enforce", stack.api_commands(1), env, port) as srv:
            print(f"enforce: loading the query data set ({LOAD_BATCH} a batch)...")
            guard.wait_quiet("enforce load")
            res.load_seconds, res.loaded = asyncio.run(_prepare(port, idp, dsn))
            for case in CASES:
                counts = {s: asyncio.run(_count(port, case.path, idp.tokens[s])) for s in STATES}
                if counts["unrestricted"] != counts["permissions"]:
                    raise SystemExit(f"enforce {case.key}: counts differ {counts}")
                res.counts[case.key] = counts["permissions"]
                for state in (*STATES, *reversed(STATES)):  # ABBA
                    sc = Scenario("query", path=case.path, tenant=TENANT, token=idp.tokens[state])
                    run = runner.http(
                        port, sc, srv.pids, f"enforce-{case.key}-{state}", concurrency=1
                    )
                    res.runs.setdefault((case.key, state), []).append(run)
            if runner.args.explain:
                res.plans = _plans(dsn, idp.url)
    return res


def print_results(res: EnforceResults) -> None:
    print(
        f"\nAccess enforcement on queries (tenant {TENANT}, {res.loaded:,} entities loaded in "
        f"{res.load_seconds:.1f} s, authentication on, limit={LIMIT}, one connection): the "
        f"admin's token (unrestricted: no predicate) next to a user's readable through "
        f"permissions only (the readable-scope predicate in SQL; same entities, same counts)"
    )
    for case in CASES:
        runs = [res.runs[(case.key, state)] for state in STATES]
        pair = Pair(*(min(r, key=lambda m: m.result.p95_ms) for r in runs))
        print(f"  {case.label} — {res.counts[case.key]} matches")
        p95s = " / ".join(
            f"{state} " + ", ".join(f"{m.result.p95_ms:.1f}" for m in r)
            for state, r in zip(STATES, runs, strict=True)
        )
        print(f"  {case.key:<7} p95 of every run (ABBA): {p95s} ms; the lower of each below")
        what = "p95 with permissions, against the unrestricted"
        print("\n".join(pair.report(f"{case.key:<7}", STATES, pair.p95_cost(), what, TARGET)))
    print(f"  ({QUERY_TYPE} is the queried type; the grant covers every type of the data set)")
    for (key, state), lines in res.plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of {key}, {state}:")
        print("\n".join(lines))
