"""Schema registry, steward operations (DESIGN.md "Schema registry"): register immutable versions
of a JSON Schema for an entity type per tenant, list and retrieve them, activate one, deactivate,
delete, and dry-run a version against the stored entities before it is activated.

Layer: registry/ service. Takes a ``RequestContext`` (tenant, term map of the request's @context)
and returns domain objects; the API layer serialises them. A type is named by a term of the
request's @context or by its IRI. A version's content is its schema plus the @context registered
with it; registering content a type already has returns that version instead of a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData, NgsiLdError, NonexistentTenant, ResourceNotFound
from city_os.ngsild.entity import expand_type_name
from city_os.registry.active import ActiveSchemas, CompiledSchema
from city_os.registry.validation import Violation
from city_os.store.postgres.db import Tenants, check_tenant
from city_os.store.postgres.schemas import SchemaRepository, SchemaVersion, VersionInfo

_SCAN_PAGE = 500


class Conflict(NgsiLdError):
    """409: the request conflicts with the registry's state (e.g. deleting the active version).

    NGSI-LD defines no 409 type besides AlreadyExists, which does not fit; named like the other
    HTTP-derived types in city_os.errors.
    """

    type_uri = "https://uri.etsi.org/ngsi-ld/errors/Conflict"
    status = 409
    title = "Conflict"


@dataclass(frozen=True)
class TypeSummary:
    type_iri: str
    term: str  # as registered in the newest version
    active_version: int | None
    versions: list[VersionInfo]


@dataclass
class DryRun:
    type_iri: str
    version: int | None  # None: a candidate schema that was not registered
    checked: int = 0
    invalid: int = 0
    examples: list[tuple[str, list[Violation]]] = field(default_factory=list)


def digest(schema: dict[str, Any], context: Any) -> str:
    """Identity of a version's content, independent of member order."""
    canonical = orjson.dumps({"schema": schema, "@context": context}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _summaries(infos: list[VersionInfo]) -> list[TypeSummary]:
    by_type: dict[str, list[VersionInfo]] = {}
    for info in infos:
        by_type.setdefault(info.type_iri, []).append(info)
    return [
        TypeSummary(
            type_iri,
            versions[-1].term,
            next((v.version for v in versions if v.active), None),
            versions,
        )
        for type_iri, versions in by_type.items()
    ]


class SchemaRegistry:
    def __init__(self, repo: SchemaRepository, active: ActiveSchemas, tenants: Tenants) -> None:
        self.repo = repo
        self.active = active
        self.tenants = tenants

    def type_iri(self, ctx: RequestContext, type_name: object) -> str:
        check_tenant(ctx.tenant)
        return expand_type_name(ctx.terms, type_name)

    async def register(
        self, ctx: RequestContext, type_name: object, schema: object, *, activate: bool
    ) -> tuple[VersionInfo, bool]:
        """Store ``schema`` (with the request's @context) as a new version; True if new."""
        type_iri = self.type_iri(ctx, type_name)
        if not isinstance(schema, dict):
            raise BadRequestData("schema must be a JSON Schema object")
        content = digest(schema, ctx.context)
        await self.active.compile(schema, ctx.context, content)  # 400 before anything is stored
        term = type_name if isinstance(type_name, str) else type_iri
        info, created = await self.repo.register(
            ctx.tenant, type_iri, term, schema, ctx.context, content, activate=activate
        )
        if created or activate:
            await self.active.refresh(ctx.tenant, type_iri)
        return info, created

    async def types(self, ctx: RequestContext) -> list[TypeSummary]:
        check_tenant(ctx.tenant)
        return _summaries(await self.repo.versions(ctx.tenant))

    async def type(self, ctx: RequestContext, type_name: str) -> TypeSummary:
        type_iri = self.type_iri(ctx, type_name)
        found = _summaries(await self.repo.versions(ctx.tenant, type_iri))
        if not found:
            raise ResourceNotFound(f"no schema is registered for type {type_name}")
        return found[0]

    async def version(self, ctx: RequestContext, type_name: str, version: int) -> SchemaVersion:
        found = await self.repo.get(ctx.tenant, self.type_iri(ctx, type_name), version)
        if found is None:
            raise ResourceNotFound(f"type {type_name} has no schema version {version}")
        return found

    async def active_version(self, ctx: RequestContext, type_name: str) -> SchemaVersion:
        summary = await self.type(ctx, type_name)
        if summary.active_version is None:
            raise ResourceNotFound(f"type {type_name} has no active schema")
        return await self.version(ctx, type_name, summary.active_version)

    async def activate(self, ctx: RequestContext, type_name: str, version: int) -> None:
        type_iri = self.type_iri(ctx, type_name)
        if not await self.repo.activate(ctx.tenant, type_iri, version):
            raise ResourceNotFound(f"type {type_name} has no schema version {version}")
        await self.active.refresh(ctx.tenant, type_iri)

    async def deactivate(self, ctx: RequestContext, type_name: str) -> None:
        type_iri = self.type_iri(ctx, type_name)
        if not await self.repo.deactivate(ctx.tenant, type_iri):
            raise ResourceNotFound(f"no schema is registered for type {type_name}")
        await self.active.refresh(ctx.tenant, type_iri)

    async def delete_version(self, ctx: RequestContext, type_name: str, version: int) -> None:
        type_iri = self.type_iri(ctx, type_name)
        outcome = await self.repo.delete_version(ctx.tenant, type_iri, version)
        if outcome == "missing":
            raise ResourceNotFound(f"type {type_name} has no schema version {version}")
        if outcome == "active":
            raise Conflict(
                f"version {version} is the active schema of {type_name}; deactivate it or "
                "activate another version first"
            )

    async def delete_type(self, ctx: RequestContext, type_name: str) -> None:
        type_iri = self.type_iri(ctx, type_name)
        if not await self.repo.delete_type(ctx.tenant, type_iri):
            raise ResourceNotFound(f"no schema is registered for type {type_name}")
        await self.active.refresh(ctx.tenant, type_iri)

    # -- dry runs --------------------------------------------------------------------------

    async def dry_run(
        self, ctx: RequestContext, type_name: str, version: int, examples: int
    ) -> DryRun:
        """How many stored entities of the type a registered version would refuse."""
        found = await self.version(ctx, type_name, version)
        compiled = await self.active.compile(found.schema, found.context, found.info.digest)
        return await self._scan(ctx.tenant, found.info.type_iri, version, compiled, examples)

    async def dry_run_candidate(
        self, ctx: RequestContext, type_name: object, schema: object, examples: int
    ) -> DryRun:
        """The same for a schema (with the request's @context) that is not registered."""
        type_iri = self.type_iri(ctx, type_name)
        if not isinstance(schema, dict):
            raise BadRequestData("schema must be a JSON Schema object")
        compiled = await self.active.compile(schema, ctx.context, digest(schema, ctx.context))
        return await self._scan(ctx.tenant, type_iri, None, compiled, examples)

    async def _scan(
        self,
        tenant: str,
        type_iri: str,
        version: int | None,
        compiled: CompiledSchema,
        examples: int,
    ) -> DryRun:
        report = DryRun(type_iri, version)
        try:
            schema = await self.tenants.schema(tenant, create=False)
        except NonexistentTenant:
            return report  # no entities at all
        after = ""
        while True:
            page = await self.repo.scan(schema, type_iri, after, _SCAN_PAGE)
            for stored in page:
                report.checked += 1
                violations = compiled.check(stored.record, type_iri)
                if violations:
                    report.invalid += 1
                    if len(report.examples) < examples:
                        report.examples.append((stored.record.id, violations))
            if len(page) < _SCAN_PAGE:
                return report
            after = page[-1].record.id
