"""API keys for machine clients (sensors, connectors, a public report form): /cityos/v1/apikeys.

Layer: auth/ (service; no aiohttp, no SQL). A key is ``cityos_<id>_<secret>``: ``id`` (16 hex
digits) is public and names the key in lists and audit records; ``secret`` is 256 random bits
(``secrets.token_urlsafe(32)``). The key is shown once, at creation; only ``sha256(key)`` is
stored. Why SHA-256 and not a password hash (bcrypt, scrypt, Argon2): those are slow on purpose
to make guessing a *low-entropy* password expensive after a database leak; a 256-bit random
secret cannot be guessed at any speed, so the slow hash would only add milliseconds to every
request for no gain. Comparison is constant-time (``hmac.compare_digest``).

A key acts in one tenant, for some operations (read, create, update, delete), optionally only on
some entity types and only from one browser ``Origin`` (a public web form: another site's page
cannot use it from a visitor's browser; a script can send any Origin, so that binding is about
browsers, not a secret). Keys are revocable and may expire. Verified keys are cached per process;
revocation NOTIFYs ``cityos_apikeys`` and every process forgets the key at once. Last-used times
are kept in memory and written in one batch every few seconds, never one write per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any, Final

from city_os.auth.authenticate import API_KEY_PREFIX
from city_os.auth.policy import KEY_OPERATIONS, Operation, TenantOperation, may
from city_os.auth.principal import KeyScope, Principal
from city_os.errors import AccessDenied, BadRequestData, ResourceNotFound, Unauthorized
from city_os.ngsild.entity import check_datetime, parse_types
from city_os.ngsild.jsonld import TermMap
from city_os.store.postgres.auth_keys import CHANNEL, ApiKeyRepository, StoredKey
from city_os.store.postgres.listen import ChannelListener

log = logging.getLogger(__name__)

_KEY: Final = re.compile(rf"^{API_KEY_PREFIX}([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
_MEMBERS: Final = {"name", "operations", "types", "origin", "expiresAt", "@context"}
USED_FLUSH_INTERVAL: Final = 10.0  # seconds between writes of last-used times
_CACHE_SECONDS: Final = 60.0  # a safety net: revocations arrive by NOTIFY at once
_MISS_SECONDS: Final = 5.0  # unknown ids are remembered briefly (a flood of bogus keys)
_CACHE_SIZE: Final = 10_000


def new_key() -> tuple[str, str]:
    """(id, the whole key)."""
    key_id = secrets.token_hex(8)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _parse_time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestData(f"{name} must be a date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{name} {value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BadRequestData(f"{name} needs a time zone (Z or ±hh:mm)")
    check_datetime(value, name)  # an offset and a year in UTC PostgreSQL and Python can hold
    return moment


class ApiKeys:
    def __init__(self, repo: ApiKeyRepository, dsn: str | None) -> None:
        self.repo = repo
        self._dsn = dsn
        self._cache: dict[str, tuple[StoredKey | None, float]] = {}
        self._used: dict[str, float] = {}
        self._listener: ChannelListener | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._dsn is not None:
            self._listener = ChannelListener(self._dsn, CHANNEL, self._changed, self._reset)
            await self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()

    async def _changed(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def _reset(self) -> None:
        self._cache = {}

    # -- authentication (the hot path) -------------------------------------------------------

    async def authenticate(self, key: str, origin: str | None) -> Principal:
        match = _KEY.match(key)
        if match is None:
            raise Unauthorized("the API key is malformed")
        stored = await self._lookup(match.group(1))
        if stored is None or not hmac.compare_digest(stored.secret_hash, key_hash(key)):
            raise Unauthorized("the API key is not valid")
        if stored.revoked_at is not None:
            raise Unauthorized("the API key has been revoked")
        if stored.expires_at is not None and stored.expires_at <= datetime.now(UTC):
            raise Unauthorized("the API key has expired")
        if stored.origin is not None and origin != stored.origin:
            raise Unauthorized(f"this API key may only be used from the origin {stored.origin}")
        self._used[stored.id] = time.time()
        return Principal(
            api_key=KeyScope(
                stored.id,
                stored.tenant,
                frozenset(Operation(o) for o in stored.operations),
                frozenset(stored.types),
                stored.origin,
            )
        )

    async def _lookup(self, key_id: str) -> StoredKey | None:
        cached = self._cache.get(key_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        stored = await self.repo.get(key_id)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache = {}
        self._cache[key_id] = (stored, now + (_CACHE_SECONDS if stored else _MISS_SECONDS))
        return stored

    async def flush(self) -> None:
        if not self._used:
            return
        batch, self._used = self._used, {}
        try:
            ids = list(batch)
            await self.repo.touch(ids, [datetime.fromtimestamp(batch[i], UTC) for i in ids])
        except Exception:
            log.exception("could not store API key last-used times; keeping them")
            for key_id, at in batch.items():
                self._used[key_id] = max(at, self._used.get(key_id, at))

    async def run(self, interval: float = USED_FLUSH_INTERVAL) -> None:
        """Write last-used times every ``interval`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    # -- the resource ----------------------------------------------------------------------

    @staticmethod
    def _admin(principal: Principal, tenant: str) -> None:
        decision = may(principal, tenant, TenantOperation.MANAGE_ACCESS)
        if not decision:
            raise AccessDenied(decision.reason)

    async def create(
        self, principal: Principal, tenant: str, body: dict[str, Any], terms: TermMap
    ) -> tuple[StoredKey, str]:
        """The stored key and the key itself (to show once)."""
        self._admin(principal, tenant)
        unknown = set(body) - _MEMBERS
        if unknown:
            raise BadRequestData(f"unknown members: {', '.join(sorted(unknown))}")
        name, operations = body.get("name"), body.get("operations")
        if not isinstance(name, str) or not name.strip():
            raise BadRequestData("name must say what the key is for (a non-empty string)")
        allowed = sorted(KEY_OPERATIONS)
        if (
            not isinstance(operations, list)
            or not operations
            or not set(operations) <= set(allowed)
        ):
            raise BadRequestData(f"operations must be a non-empty list of {', '.join(allowed)}")
        types: list[str] = []
        if body.get("types") is not None:
            if not isinstance(body["types"], list) or not body["types"]:
                raise BadRequestData("types must be a non-empty list of type names")
            types = parse_types(terms, body["types"])
        origin = body.get("origin")
        if origin is not None and (
            not isinstance(origin, str) or not re.fullmatch(r"https?://[^/\s]+", origin)
        ):
            raise BadRequestData("origin must be an Origin like https://forms.city.example")
        key_id, key = new_key()
        stored = await self.repo.insert(
            StoredKey(
                id=key_id,
                tenant=tenant,
                name=name.strip(),
                secret_hash=key_hash(key),
                operations=tuple(sorted(set(operations))),
                types=tuple(types),
                origin=origin,
                created_by=principal.actor["cityosactor"],
                created_at=datetime.now(UTC),
                expires_at=_parse_time(body.get("expiresAt"), "expiresAt"),
                revoked_at=None,
                last_used_at=None,
            )
        )
        return stored, key

    async def find(self, principal: Principal, tenant: str) -> list[StoredKey]:
        self._admin(principal, tenant)
        await self.flush()  # show last-used times as they are
        return await self.repo.of_tenant(tenant)

    async def get(self, principal: Principal, tenant: str, key_id: str) -> StoredKey:
        self._admin(principal, tenant)
        await self.flush()
        stored = await self.repo.get(key_id)
        if stored is None or stored.tenant != tenant:
            raise ResourceNotFound(f"API key {key_id} not found")
        return stored

    async def revoke(self, principal: Principal, tenant: str, key_id: str) -> StoredKey:
        self._admin(principal, tenant)
        revoked = await self.repo.revoke(tenant, key_id, principal.actor["cityosactor"])
        if revoked is None:
            raise ResourceNotFound(f"API key {key_id} not found")
        self._cache.pop(key_id, None)
        return revoked


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def key_body(stored: StoredKey, terms: TermMap) -> dict[str, Any]:
    return {
        "id": stored.id,
        "name": stored.name,
        "operations": list(stored.operations),
        "types": [terms.compact_type(t) for t in stored.types] or None,
        "origin": stored.origin,
        "createdBy": stored.created_by,
        "createdAt": _iso(stored.created_at),
        "expiresAt": _iso(stored.expires_at),
        "revokedAt": _iso(stored.revoked_at),
        "lastUsedAt": _iso(stored.last_used_at),
    }
