"""Authentication cost (issue "Access control"): create and retrieve with token verification on,
as a ratio to the same run with authentication off.

Layer: bench/. A static OIDC issuer (discovery document and JWKS files served by
``python -m http.server`` on a free port, an RS256 key made here) is trusted by a second
``city-os serve`` started with ``CITYOS_AUTH_ENABLED=true``. Each run sends the same requests
as the foundation scenarios, in tenants of their own; the "on" runs carry one bearer token on
every request, as a client does until its token expires (the verifier checks its signature once
and remembers the result, never past exp). Before timing, the "on" server must answer a request
with a bad token with 401: proof that it verifies.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import stack
from bench.runner import Measured, Runner
from bench.workload import Scenario

TARGET = 0.10  # token verification may add at most 10 % to a request
KINDS = ("create", "retrieve")


@dataclass
class AuthResults:
    runs: dict[tuple[str, str], Measured] = field(default_factory=dict)  # (kind, off|on)


def _issuer(folder: Path, port: int) -> tuple[str, str]:
    """Write the issuer's documents; (issuer URL, a token valid for an hour)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    url = f"http://127.0.0.1:{port}"
    public = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(key.public_key()))
    wellknown = folder / ".well-known"
    wellknown.mkdir()
    (wellknown / "openid-configuration").write_text(
        json.dumps({"issuer": url, "jwks_uri": url + "/jwks.json"})
    )
    (folder / "jwks.json").write_text(
        json.dumps({"keys": [{**public, "kid": "bench", "alg": "RS256", "use": "sig"}]})
    )
    now = int(time.time())
    claims = {"iss": url, "aud": "city-os", "sub": "bench", "iat": now, "exp": now + 3600}
    claims["roles"] = ["writer@bench-auth-on"]
    return url, jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})


def _wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"auth: the bench's issuer did not answer at {url}") from None
            time.sleep(0.1)  # poll until http.server listens


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
    with tempfile.TemporaryDirectory() as tmp:
        idp_port = stack.free_port()
        url, token = _issuer(Path(tmp), idp_port)
        idp = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(idp_port), "--bind", "127.0.0.1"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(url + "/jwks.json")
            for state in ("off", "on"):
                port = stack.free_port()
                env = stack.server_env(dsn, port, pool)
                if state == "on":
                    issuers = [{"issuer": url, "audience": "city-os", "tenants": ["*"]}]
                    env.update(
                        CITYOS_AUTH_ENABLED="true",
                        CITYOS_OIDC_ISSUERS=orjson.dumps(issuers).decode(),
                    )
                with stack.running(f"auth-{state}", stack.api_commands(1), env, port) as srv:
                    if state == "on":
                        _refuses_bad_tokens(port)
                    measured = _measure(
                        runner, port, srv.pids, state, token if state == "on" else ""
                    )
                    for kind, m in measured.items():
                        res.runs[(kind, state)] = m
        finally:
            stack.stop([idp])
    return res


def print_results(res: AuthResults) -> None:
    print("\nAuthentication cost: the foundation create and retrieve, one bearer token (RS256)")
    for kind in KINDS:
        off, on = res.runs[(kind, "off")], res.runs[(kind, "on")]
        r_off, r_on = off.result.rate(), on.result.rate()
        cost = r_off / r_on - 1 if r_on else float("inf")
        for state, m in (("off", off), ("on", on)):
            print(
                f"  {kind:<8} auth {state:<3} {m.result.rate():>7.0f} ops/s  p50 "
                f"{m.result.p50_ms:5.1f}  p99 {m.result.p99_ms:6.1f} ms  errors "
                f"{m.result.errors}  load1 {m.load1:.2f}"
                + (f"  statuses {m.result.statuses}" if m.result.errors else "")
            )
        verdict = "PASS" if cost <= TARGET else "MISS"
        print(
            f"  {kind:<8} cost of verification: +{100 * cost:.1f} % time per request "
            f"(throughput); target ≤ {100 * TARGET:.0f} %  {verdict}"
        )
