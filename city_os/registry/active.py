"""Schema registry, hot path: the active schema of every (tenant, entity type) held in memory.

Layer: registry/. ``ActiveSchemas.validate`` is the ``EntityService.validators`` hook: a dict
lookup per entity type, then projection and validation with a validator compiled once per schema
content (``ValidatorCache`` keyed by digest) and the term map of the schema's @context — never a
database query per write. The map is loaded at start and refreshed on change: the process that
changes the registry refreshes the (tenant, type) itself right after commit, and every process
LISTENs on ``cityos_schemas`` (the change's transaction NOTIFYs it; ``ChannelListener``) and
refreshes too; after a lost listener connection it reconnects and reloads everything, since
notifications may have been missed. Refreshes are serialised, and each reads the committed
state, so the last one wins with the newest state.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from city_os.core.contexts import ContextLoader
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import EntityRecord
from city_os.registry.projection import Failure, invalid_entity, key_values
from city_os.registry.validation import SchemaValidator, ValidatorCache, Violation
from city_os.store.postgres.listen import ChannelListener
from city_os.store.postgres.schemas import (
    CHANNEL,
    SchemaRepository,
    SchemaVersion,
    VersionInfo,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """A schema ready to judge entities: its validator and the term map of its @context."""

    validator: SchemaValidator
    terms: TermMap

    def check(self, record: EntityRecord, type_iri: str) -> list[Violation]:
        return self.validator.validate(key_values(record, type_iri, self.terms))


@dataclass(frozen=True, slots=True)
class ActiveSchema:
    info: VersionInfo
    compiled: CompiledSchema


class ActiveSchemas:
    def __init__(
        self,
        repo: SchemaRepository,
        contexts: ContextLoader,
        dsn: str | None = None,
        validators: ValidatorCache | None = None,
    ) -> None:
        self._repo = repo
        self._contexts = contexts
        self._dsn = dsn  # None: no LISTEN (one-shot commands such as load-sample)
        self._validators = validators or ValidatorCache()
        self._active: dict[tuple[str, str], ActiveSchema] = {}
        self._lock = asyncio.Lock()
        self._listener: ChannelListener | None = None

    # -- the hook --------------------------------------------------------------------------

    async def validate(self, tenant: str, _schema: str, record: EntityRecord) -> None:
        """Raise BadRequestData if ``record`` breaks the active schema of any of its types."""
        if not self._active:
            return
        failures: list[Failure] = []
        for type_iri in record.types:
            active = self._active.get((tenant, type_iri))
            if active is None:
                continue
            compiled = active.compiled
            doc = key_values(record, type_iri, compiled.terms)
            if compiled.validator.is_valid_fast(doc):
                continue
            # Listing violations walks the document in pure Python (jsonschema): off the loop.
            violations = await asyncio.to_thread(compiled.validator.validate, doc)
            if violations:
                failures.append(Failure(active.info.term, active.info.version, violations))
        if failures:
            raise invalid_entity(record.id, failures)

    def get(self, tenant: str, type_iri: str) -> ActiveSchema | None:
        return self._active.get((tenant, type_iri))

    # -- compiling -------------------------------------------------------------------------

    async def compile(self, schema: dict[str, Any], context: Any, digest: str) -> CompiledSchema:
        """Raises BadRequestData (invalid schema, unresolvable $ref, bad @context) or
        LdContextNotAvailable."""
        terms = await self._contexts.term_map(context)
        return CompiledSchema(self._validators.get(digest, schema), terms)

    async def _activated(self, version: SchemaVersion) -> ActiveSchema | None:
        info = version.info
        try:
            compiled = await self.compile(version.schema, version.context, info.digest)
        except Exception:
            # Registration checked it; this is e.g. a remote @context gone missing since.
            log.exception(
                "active schema %s version %d of tenant %r cannot be used; not validating",
                info.type_iri,
                info.version,
                info.tenant,
            )
            return None
        return ActiveSchema(info, compiled)

    # -- refreshing ------------------------------------------------------------------------

    async def reload(self) -> None:
        """Load every active schema of every tenant (start-up, after a lost listener)."""
        async with self._lock:
            fresh: dict[tuple[str, str], ActiveSchema] = {}
            for version in await self._repo.active():
                active = await self._activated(version)
                if active is not None:
                    fresh[(active.info.tenant, active.info.type_iri)] = active
            self._active = fresh

    async def refresh(self, tenant: str, type_iri: str) -> None:
        """Re-read the active schema of one (tenant, type) after a change."""
        async with self._lock:
            versions = await self._repo.active(tenant, type_iri)
            active = await self._activated(versions[0]) if versions else None
            active_map = dict(self._active)  # copy-on-write: validate() never sees a half state
            if active is None:
                active_map.pop((tenant, type_iri), None)
            else:
                active_map[(tenant, type_iri)] = active
            self._active = active_map

    # -- lifecycle and LISTEN --------------------------------------------------------------

    async def start(self) -> None:
        if self._dsn is not None:
            self._listener = ChannelListener(self._dsn, CHANNEL, self._apply, self.reload)
            await self._listener.start()  # before the first load, so no change slips in between
        await self.reload()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def _apply(self, payload: str) -> None:
        if not payload:
            await self.reload()
            return
        change = orjson.loads(payload)
        await self.refresh(change["tenant"], change["type"])
