"""A static OIDC issuer for the benches that run ``city-os serve`` with authentication on.

Layer: bench/. Its discovery document and JWKS are files served by ``python -m http.server`` on
a free port; the RS256 key is made here and signs one token per caller named by the bench
(claims ``sub`` and ``roles``, valid for two hours). ``env`` is what a server needs to trust it
for every tenant. Used by the ``auth`` and ``enforce`` groups.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import stack

AUDIENCE = "city-os"


@dataclass(frozen=True)
class Issuer:
    url: str
    tokens: dict[str, str]  # caller name → bearer token

    def env(self) -> dict[str, str]:
        """The settings of a server with authentication on that trusts this issuer."""
        issuers = [{"issuer": self.url, "audience": AUDIENCE, "tenants": ["*"]}]
        return {
            "CITYOS_AUTH_ENABLED": "true",
            "CITYOS_OIDC_ISSUERS": orjson.dumps(issuers).decode(),
        }


Callers = Mapping[str, tuple[str, Sequence[str]]]  # name → (sub, roles)


def _documents(folder: Path, url: str, callers: Callers) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
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
    for name, (sub, roles) in callers.items():
        claims = {"iss": url, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 7200}
        claims["roles"] = list(roles)
        tokens[name] = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})
    return tokens


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the bench's issuer did not answer at {url}") from None
            time.sleep(0.1)  # poll until http.server listens


@contextmanager
def serving(callers: Callers) -> Iterator[Issuer]:
    """The issuer, serving, with a token per caller (name → (sub, roles))."""
    with tempfile.TemporaryDirectory() as tmp:
        port = stack.free_port()
        url = f"http://127.0.0.1:{port}"
        tokens = _documents(Path(tmp), url, callers)
        idp = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(url + "/jwks.json")
            yield Issuer(url, tokens)
        finally:
            stack.stop([idp])
