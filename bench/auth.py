"""Authentication cost (issue "Access control"): create and retrieve with token verification on,
as a ratio to the same run with authentication off.

Layer: bench/. A static OIDC issuer (``bench.issuer``) is trusted by a second ``city-os serve``
started with authentication on. Each run sends the same requests as the foundation scenarios,
in tenants of their own; the "on" runs carry one bearer token of a writer on every request, as
a client does until its token expires (the verifier checks its signature once and remembers the
result, never past exp), so each create also writes the creator's ``own`` grant and its audit
row. Before timing, the "on" server must answer a request with a bad token with 401: proof that
it verifies. Beside the throughput ratio (the target): server + PostgreSQL CPU per request.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field

from bench import issuer, stack
from bench.runner import Measured, Pair, Runner
from bench.workload import Scenario

TARGET = 0.10  # token verification may add at most 10 % to a request
KINDS = ("create", "retrieve")
TENANT_ON = "bench-auth-on"


@dataclass
class AuthResults:
    runs: dict[tuple[str, str], Measured] = field(default_factory=dict)  # (kind, off|on)


def _refuses_bad_tokens(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/cityos/v1/me", headers={"Authorization": "Bearer x.y.z"}
    )
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return
    raise SystemExit("auth: the server with authentication on accepted a bad token")


def _measure(
    runner: Runner, port: int, pids: list[int], state: str, token: str
) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    tenant = f"bench-auth-{state}"
    created = 0
    for kind in KINDS:
        sc = Scenario(
            kind,
            prefix=f"auth-{state}-{kind[0]}-",
            seed_prefix=f"auth-{state}-c-",
            existing=created or 1000,
            tenant=tenant,
            token=token,
        )
        out[kind] = runner.http(port, sc, pids, f"auth-{state}-{kind}")
        if kind == "create":
            created = out[kind].result.sent
    return out


def run(runner: Runner, dsn: str, pool: int) -> AuthResults:
    res = AuthResults()
    # A writer, not an admin: each create also gives the creator ``own`` (and audits it).
    with issuer.serving({"writer": ("bench", [f"writer@{TENANT_ON}"])}) as idp:
        for state in ("off", "on"):
            port = stack.free_port()
            env = stack.server_env(dsn, port, pool)
            if state == "on":
                env.update(idp.env())
            with stack.running(f"auth-{state}", stack.api_commands(1), env, port) as srv:
                if state == "on":
                    _refuses_bad_tokens(port)
                token = idp.tokens["writer"] if state == "on" else ""
                for kind, m in _measure(runner, port, srv.pids, state, token).items():
                    res.runs[(kind, state)] = m
    return res


def print_results(res: AuthResults) -> None:
    print("\nAuthentication cost: the foundation create and retrieve, one bearer token (RS256)")
    for kind in KINDS:
        pair = Pair(res.runs[(kind, "off")], res.runs[(kind, "on")])
        names = ("auth off", "auth on")
        what = "cost of verification: time per request (throughput)"
        print("\n".join(pair.report(f"{kind:<8}", names, pair.time_cost(), what, TARGET)))
