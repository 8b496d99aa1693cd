"""Citizens and consent: data subjects of personal entities, consents, the access log.

Layer: auth/ (service; no aiohttp, no SQL). An entity names its data subject — the citizen, as
``(iss, sub)`` at a citizens' IdP (the municipal IdP where the My Number Card login happens) —
through ``/cityos/v1/dataSubjects/{entityId}``, kept next to the entity rather than in it (see
docs/access-control.md: an attribute would be dropped by every PUT and readable by every
reader). A citizen signed in at that IdP lists their entities, grants a service (an OIDC client
id) a consent for some entity types with a purpose and an expiry, revokes it, and reads the log
of every read made under a consent.

For the read path (phase 2): ``consents_for`` gives the valid consents of the data subjects of
the entities a service is about to read, for ``decide``; ``log_reads`` writes what it read, once
per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from city_os.auth.permissions import PermissionService
from city_os.auth.policy import Consent, Operation, citizen_of, decide
from city_os.auth.principal import Principal
from city_os.errors import AccessDenied, BadRequestData, ResourceNotFound, Unauthorized
from city_os.ngsild.entity import check_datetime, check_entity_id, parse_types
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.auth_consent import (
    ConsentRepository,
    DataSubjectRepository,
    StoredConsent,
)
from city_os.store.postgres.auth_log import AccessEntry, access_log, record_access
from city_os.store.postgres.db import Tenants

_GRANT: Final = {"client", "types", "purpose", "expiresAt", "@context"}
MAX_PAGE: Final = 1000


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def page(limit: object, offset: object) -> tuple[int, int]:
    try:
        n, skip = int(str(limit)), int(str(offset))
    except ValueError:
        raise BadRequestData("limit and offset must be integers") from None
    if not 1 <= n <= MAX_PAGE or skip < 0:
        raise BadRequestData(f"limit must be 1..{MAX_PAGE} and offset at least 0")
    return n, skip


class ConsentService:
    def __init__(
        self,
        consents: ConsentRepository,
        subjects: DataSubjectRepository,
        permissions: PermissionService,
        tenants: Tenants,
        pool: asyncpg.Pool,
        citizen_issuers: frozenset[str],
    ) -> None:
        self.consents = consents
        self.subjects = subjects
        self.permissions = permissions
        self.tenants = tenants
        self._pool = pool
        self._citizen_issuers = citizen_issuers  # empty: authentication off, any issuer

    @staticmethod
    def citizen(principal: Principal, tenant: str) -> tuple[str, str]:
        found = citizen_of(principal, tenant)
        if found is None:
            if principal.anonymous:
                raise Unauthorized("sign in at the citizens' IdP first", error=None)
            raise AccessDenied("only a citizen signed in at a citizens' IdP has /me data")
        return found

    # -- /me -------------------------------------------------------------------------------

    async def grant(
        self, principal: Principal, tenant: str, body: dict[str, Any], terms: TermMap
    ) -> StoredConsent:
        citizen = self.citizen(principal, tenant)
        unknown = set(body) - _GRANT
        if unknown:
            raise BadRequestData(f"unknown members: {', '.join(sorted(unknown))}")
        client, purpose, types = body.get("client"), body.get("purpose"), body.get("types")
        if not isinstance(client, str) or not client:
            raise BadRequestData("client must be the service's OIDC client id")
        if not isinstance(purpose, str) or not purpose.strip():
            raise BadRequestData("purpose must say what the service uses the data for")
        if not isinstance(types, list) or not types:
            raise BadRequestData("types must be a non-empty list of entity type names")
        expires = body.get("expiresAt")
        try:
            moment = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequestData(f"expiresAt {expires!r} is not an ISO 8601 date-time") from None
        future = "expiresAt must be a future date-time with a time zone"
        if moment.tzinfo is None:
            raise BadRequestData(future)
        check_datetime(expires, "expiresAt")  # an offset and a year in UTC both can hold
        if moment <= datetime.now(UTC):
            raise BadRequestData(future)
        return await self.consents.grant(
            tenant,
            citizen,
            client,
            parse_types(terms, types),
            purpose.strip(),
            moment,
            principal.actor["cityosactor"],
        )

    async def mine(self, principal: Principal, tenant: str) -> list[StoredConsent]:
        return await self.consents.of_citizen(tenant, self.citizen(principal, tenant))

    async def one(self, principal: Principal, tenant: str, consent_id: str) -> StoredConsent:
        found = await self.consents.get(tenant, self.citizen(principal, tenant), consent_id)
        if found is None:
            raise ResourceNotFound(f"consent {consent_id} not found")
        return found

    async def revoke(self, principal: Principal, tenant: str, consent_id: str) -> StoredConsent:
        citizen = self.citizen(principal, tenant)
        found = await self.consents.revoke(
            tenant, citizen, consent_id, principal.actor["cityosactor"]
        )
        if found is None:
            raise ResourceNotFound(f"consent {consent_id} not found")
        return found

    async def my_entities(
        self, principal: Principal, tenant: str, limit: int, offset: int
    ) -> list[EntityRecord]:
        citizen = self.citizen(principal, tenant)
        schema = await self.tenants.schema(tenant, create=False)
        return await self.subjects.entities_of(schema, citizen, limit, offset)

    async def my_access_log(
        self, principal: Principal, tenant: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        issuer, subject = self.citizen(principal, tenant)
        return await access_log(self._pool, tenant, issuer, subject, limit, offset)

    # -- data subjects (staff) ---------------------------------------------------------------

    async def _writable(self, principal: Principal, tenant: str, entity_id: str) -> str:
        check_entity_id(entity_id)
        schema = await self.tenants.schema(tenant, create=False)
        facts = await self.permissions.repo.facts(schema, entity_id)
        if facts is None:
            raise ResourceNotFound(f"entity {entity_id} not found")
        grants = (
            *await self.permissions.of_tenant(tenant),
            *await self.permissions.repo.for_entity(schema, entity_id),
        )
        if not decide(principal, tenant, Operation.READ, facts, grants):
            raise ResourceNotFound(f"entity {entity_id} not found")  # no leak of its existence
        decision = decide(principal, tenant, Operation.UPDATE, facts, grants)
        if not decision:
            raise AccessDenied(decision.reason)
        return schema

    async def set_subject(
        self, principal: Principal, tenant: str, entity_id: str, body: dict[str, Any]
    ) -> tuple[str, str]:
        if set(body) - {"issuer", "subject"}:
            raise BadRequestData("a data subject is {issuer, subject}")
        issuer, subject = body.get("issuer"), body.get("subject")
        if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
            raise BadRequestData("issuer and subject must be the citizen's iss and sub")
        if self._citizen_issuers and issuer not in self._citizen_issuers:
            raise BadRequestData(f"{issuer} is not a citizens' IdP of this broker")
        schema = await self._writable(principal, tenant, entity_id)
        actor = principal.actor["cityosactor"]
        if not await self.subjects.put(schema, tenant, entity_id, (issuer, subject), actor):
            raise ResourceNotFound(f"entity {entity_id} not found")
        return issuer, subject

    async def get_subject(
        self, principal: Principal, tenant: str, entity_id: str
    ) -> tuple[str, str]:
        schema = await self._writable(principal, tenant, entity_id)
        found = await self.subjects.get(schema, entity_id)
        if found is None:
            raise ResourceNotFound(f"entity {entity_id} has no data subject")
        return found

    async def delete_subject(self, principal: Principal, tenant: str, entity_id: str) -> None:
        schema = await self._writable(principal, tenant, entity_id)
        if not await self.subjects.delete(
            schema, tenant, entity_id, principal.actor["cityosactor"]
        ):
            raise ResourceNotFound(f"entity {entity_id} has no data subject")

    # -- for the read path (phase 2) -----------------------------------------------------------

    async def consents_for(
        self, tenant: str, client: str, citizens: Sequence[tuple[str, str]]
    ) -> list[Consent]:
        return await self.consents.valid_for(tenant, client, sorted(set(citizens)))

    async def log_reads(self, entries: Sequence[AccessEntry]) -> None:
        async with self._pool.acquire() as conn:
            await record_access(conn, entries)


def consent_body(stored: StoredConsent, terms: TermMap) -> dict[str, Any]:
    return {
        "id": stored.id,
        "client": stored.client,
        "types": [terms.compact_type(t) for t in stored.types],
        "purpose": stored.purpose,
        "createdAt": _iso(stored.created_at),
        "expiresAt": _iso(stored.expires_at),
        "revokedAt": _iso(stored.revoked_at),
        "valid": stored.consent.valid(datetime.now(UTC).timestamp()),
    }
