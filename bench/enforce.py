"""Cost of access enforcement on queries (issue "Access control", phase 2): the query scenarios
over 100,000 entities with permissions active, as a ratio to the same queries unrestricted.

Layer: bench/. One ``city-os serve`` with authentication on trusts a static OIDC issuer (its
discovery document and JWKS served by ``python -m http.server``, an RS256 key made here). The
query data set (``bench.dataset``, ``bench.query``'s cases) is loaded by a tenant admin. Two
tokens then send the same queries: the admin's (a role: the readable scope is "everything", no
predicate at all — the unrestricted query) and a user's with no role, readable through
permissions only: a type permission for every type of the data set and one entity permission,
so the SQL carries the whole readable-scope predicate (``types &&`` the granted types, ``NOT
EXISTS`` a data subject, ``EXISTS`` an entity permission) yet selects the same entities. Each
query is first checked to give both callers the same count; the two runs of a case follow each
other, so they share the machine's conditions. Target: p95 with permissions within 20 % of the
unrestricted p95.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
import asyncpg
import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import dataset, guard, stack
from bench.auth import _wait_for
from bench.ceilings import Statement
from bench.query import (
    CASES,
    INDEXED,
    LIMIT,
    LOAD_BATCH,
    LOAD_CONCURRENCY,
    QUERY_TYPE,
    Case,
    _batches,
    _Indexes,
    _Recorder,
    explain,
)
from bench.runner import Measured, Runner
from bench.workload import PREFIX, Scenario
from city_os.auth.policy import Action, Permission, readable
from city_os.auth.principal import Principal, subject_key
from city_os.core.contexts import bundled_documents
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.store.postgres.indexes import ValueIndexRepository
from city_os.store.postgres.query import QueryRepository, Visible

TENANT = "bench-enforce"
TARGET = 0.20  # p95 with permissions within 20 % of the unrestricted query
STATES = ("unrestricted", "permissions")


@dataclass
class EnforceResults:
    loaded: int = 0
    load_seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    runs: dict[tuple[str, str], Measured] = field(default_factory=dict)  # (case, state)
    plans: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # --explain


def _issuer(folder: Path, port: int) -> tuple[str, dict[str, str]]:
    """Write the issuer's documents; (issuer URL, tokens by state)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = f"http://127.0.0.1:{port}"
    public = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(key.public_key()))
    (folder / ".well-known").mkdir()
    (folder / ".well-known" / "openid-configuration").write_text(
        json.dumps({"issuer": url, "jwks_uri": url + "/jwks.json"})
    )
    (folder / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": "bench", "alg": "RS256", "use": "sig"}]})
    )
    now = int(time.time())
    tokens = {}
    for state, sub, roles in (
        ("unrestricted", "admin", [f"admin@{TENANT}"]),
        ("permissions", "user", []),
    ):
        claims = {"iss": url, "aud": "city-os", "sub": sub, "iat": now, "exp": now + 7200}
        claims["roles"] = roles
        tokens[state] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    return url, tokens


async def _prepare(port: int, url: str, tokens: dict[str, str]) -> tuple[float, int]:
    """Load the data set as the admin, then grant the user read on it by permissions."""
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {tokens['unrestricted']}", "NGSILD-Tenant": TENANT}
    bodies = _batches()
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with http.post(
                    f"{base}{PREFIX}/entityOperations/create",
                    data=body,
                    headers={**admin, "Content-Type": "application/json"},
                ) as resp:
                    if resp.status != 201:
                        raise SystemExit(f"enforce load: {resp.status} {await resp.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
        seconds = time.perf_counter() - started
        user = {"kind": "subject", "value": "user", "issuer": url}
        grants = [
            {"assignee": user, "action": "read", "target": {"types": [*dataset.TYPES, "District"]}},
            {"assignee": user, "action": "read", "target": {"entity": dataset.parent_id(1)}},
        ]
        for body in grants:
            async with http.post(f"{base}/cityos/v1/permissions", json=body, headers=admin) as r:
                if r.status != 201:
                    raise SystemExit(f"enforce grant: {r.status} {await r.text()}")
        async with http.post(
            f"{base}/cityos/v1/indexes",
            json={"attribute": "temperature", "kind": "number"},
            headers=admin,
        ) as resp:
            location = base + resp.headers["Location"]
        while True:  # built in the background
            async with http.get(location, headers=admin) as resp:
                if (await resp.json())["status"] == "ready":
                    break
            await asyncio.sleep(0.2)
    return seconds, sum(b.count(b'"id":') for b in bodies)


async def _count(port: int, path: str, token: str) -> int:
    url = f"http://127.0.0.1:{port}{path}&count=true"
    headers = {"Authorization": f"Bearer {token}", "NGSILD-Tenant": TENANT}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        if resp.status != 200:
            raise SystemExit(f"enforce query: {resp.status} {await resp.text()}")
        return int(resp.headers["NGSILD-Results-Count"])


def _statements(case: Case, schema: str, visible: Visible | None) -> list[Statement]:
    """The SQL of ``GET case.path`` as the query service sends it for a caller whose readable
    scope is ``visible`` (None: unrestricted)."""
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    names = Names(type=terms.expand_type, attr=lambda t: expand_attr_name(terms, t))
    p = case.params
    types = parse_type_selection(p["type"]) if "type" in p else None
    sel = Selection(
        selectors=(EntitySelector(types=types),),
        q=parse_q(p["q"]) if "q" in p else None,
        geo=parse_geoq(p.get("georel"), p.get("geometry"), p.get("coordinates")),
    )
    recorder = _Recorder()
    indexes = _Indexes(frozenset({names.attr(INDEXED)}))
    repo = QueryRepository(cast(asyncpg.Pool, recorder), cast(ValueIndexRepository, indexes))
    page = repo.page(
        schema, sel, names, limit=LIMIT + 1, offset=0, count="count" in p, visible=visible
    )
    asyncio.run(page)
    return recorder.statements


def _plans(dsn: str, url: str) -> dict[tuple[str, str], list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every case, unrestricted and with the user's readable
    scope (the type permission of ``_prepare``; its entity permission is looked up in SQL)."""

    async def schema_of() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            name = await conn.fetchval(
                "SELECT schema_name FROM cityos.tenants WHERE name = $1", TENANT
            )
        finally:
            await conn.close()
        return str(name)

    schema = asyncio.run(schema_of())
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
            plans[(case.key, state)] = asyncio.run(explain(dsn, _statements(case, schema, visible)))
    return plans


def run(runner: Runner, dsn: str, pool: int) -> EnforceResults:
    res = EnforceResults()
    with tempfile.TemporaryDirectory() as tmp:
        idp_port = stack.free_port()
        url, tokens = _issuer(Path(tmp), idp_port)
        idp = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(idp_port), "--bind", "127.0.0.1"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(url + "/jwks.json")
            port = stack.free_port()
            env = stack.server_env(dsn, port, pool)
            issuers = [{"issuer": url, "audience": "city-os", "tenants": ["*"]}]
            env.update(
                CITYOS_AUTH_ENABLED="true", CITYOS_OIDC_ISSUERS=orjson.dumps(issuers).decode()
            )
            with stack.running("enforce", stack.api_commands(1), env, port) as srv:
                print(f"enforce: loading the query data set ({LOAD_BATCH} a batch)...")
                guard.wait_quiet("enforce load")
                res.load_seconds, res.loaded = asyncio.run(_prepare(port, url, tokens))
                for case in CASES:
                    counts = {s: asyncio.run(_count(port, case.path, tokens[s])) for s in STATES}
                    if counts["unrestricted"] != counts["permissions"]:
                        raise SystemExit(f"enforce {case.key}: counts differ {counts}")
                    res.counts[case.key] = counts["permissions"]
                    for state in STATES:
                        sc = Scenario("query", path=case.path, tenant=TENANT, token=tokens[state])
                        res.runs[(case.key, state)] = runner.http(
                            port, sc, srv.pids, f"enforce-{case.key}-{state}", concurrency=1
                        )
                if runner.args.explain:
                    res.plans = _plans(dsn, url)
        finally:
            stack.stop([idp])
    return res


def print_results(res: EnforceResults) -> None:
    print(
        f"\nAccess enforcement on queries (tenant {TENANT}, {res.loaded:,} entities loaded in "
        f"{res.load_seconds:.1f} s, authentication on, limit={LIMIT}, one connection): the "
        f"admin's token (unrestricted: no predicate) next to a user's readable through "
        f"permissions only (the readable-scope predicate in SQL; same entities, same counts)"
    )
    for case in CASES:
        off, on = res.runs[(case.key, "unrestricted")], res.runs[(case.key, "permissions")]
        ratio = on.result.p95_ms / off.result.p95_ms if off.result.p95_ms else float("inf")
        for state, m in (("unrestricted", off), ("permissions", on)):
            r = m.result
            print(
                f"  {case.label:<29} {state:<13} {r.rate():>6.0f} ops/s  p50 {r.p50_ms:6.1f}"
                f"  p95 {r.p95_ms:6.1f} ms  errors {r.errors}  load1 {m.load1:.2f}"
            )
        verdict = "PASS" if ratio <= 1 + TARGET and not on.result.errors else "MISS"
        print(
            f"  {case.key:<7} matches {res.counts[case.key]:>6}: p95 with permissions "
            f"{100 * (ratio - 1):+.1f} % of the unrestricted; target ≤ +{100 * TARGET:.0f} %  "
            f"{verdict}"
        )
    print(f"  ({QUERY_TYPE} is the queried type; the grant covers every type of the data set)")
    for (key, state), lines in res.plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of {key}, {state}:")
        print("\n".join(lines))
