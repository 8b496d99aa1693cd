"""The per-replica registration index: which context sources a distributed operation consults.

Layer: federation/ (a per-process cache, like notifier/index.py for subscriptions).

Interface (used by distributed operations; reach it with ``request.app[REGISTRATION_INDEX]``)::

    index.matching(tenant, operation, *, entity_id=None, types=None, attrs=None,
                   geometry=None, csf=None, scope=None, terms=None) -> list[Registration]
        The live (not expired) registrations of ``tenant`` that serve ``operation`` (an
        operation name of §4.20, e.g. "retrieveEntity", "queryEntity", "updateAttrs") and
        cover the entity: ``entity_id`` (its id, or None for a query), ``types`` (expanded
        type IRIs; any of them), ``attrs`` (expanded attribute IRIs; one of them; None or
        empty: any). ``geometry``: a GeoQuery (ngsild/query/ast.py) or a GeoJSON geometry
        (tested as ``intersects``) matched against the registration's location,
        observationSpace or operationSpace (a registration without any of them is kept).
        ``csf``: a context source filter (q syntax) on the registration's properties and
        members, its names expanded with ``terms`` (the request's TermMap; default: full
        IRIs only). ``scope``: a scopeQ text on the registration's ``scope``. In creation order.
    index.registrations(tenant) -> list[Registration]   every registration of the tenant
    index.get(tenant, registration_id) -> Registration | None
    await index.refresh(tenant, registration_id)        re-read one (after a commit)
    await index.reload()                                everything (start, lost listener)

Kept current without polling: loaded at start, then refreshed one registration at a time on
``LISTEN cityos_registrations`` (every change's transaction NOTIFYs it, store/postgres/
csource.py); after a lost listener connection everything is reloaded, since notifications may
have been missed. ``city-os serve`` also refreshes right after its own commits, before
answering, so a registration applies to every request that follows its 201. Refreshes are
serialised and each reads the committed state, so the last one wins with the newest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from city_os.errors import NgsiLdError
from city_os.federation.model import Registration
from city_os.federation.registrations_query import RegistrationFilter, as_record
from city_os.ngsild.entity import TermExpander, expand_attr_name, expand_type_name
from city_os.ngsild.query.ast import GeoQuery
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.query.geo import geoq_from_json
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.store.postgres.csource import CHANNEL, RegistrationRepository
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.listen import ChannelListener

log = logging.getLogger(__name__)
_SPACES = ("location", "observationSpace", "operationSpace")


def _names(terms: TermExpander | None) -> Names:
    if terms is None:
        return Names(type=lambda t: t, attr=lambda a: a)
    return Names(
        type=lambda t: expand_type_name(terms, t), attr=lambda a: expand_attr_name(terms, a)
    )


def _geo_test(geometry: GeoQuery | dict[str, Any]) -> Any:
    """A test per space: the geoquery with its geoproperty set to each registration space."""
    if isinstance(geometry, dict):
        query = geoq_from_json(
            {"georel": "intersects", "geometry": geometry.get("type"),
             "coordinates": geometry.get("coordinates")}
        )  # fmt: skip
    else:
        query = geometry
    names = _names(None)
    tests = []
    for space in _SPACES:
        spaced = GeoQuery(
            query.georel,
            query.geometry,
            query.coordinates,
            "https://uri.etsi.org/ngsi-ld/" + space,
            query.max_distance,
            query.min_distance,
        )
        tests.append(compile_selection(Selection(geo=spaced), names))
    return tests


class RegistrationIndex:
    def __init__(
        self, repo: RegistrationRepository, tenants: Tenants, dsn: str | None = None
    ) -> None:
        self._repo = repo
        self._tenants = tenants
        self._listener = ChannelListener(dsn, CHANNEL, self._apply, self.reload) if dsn else None
        self._regs: dict[str, dict[str, Registration]] = {}  # tenant → id → registration
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.start()  # before the load: no change slips in between
        await self.reload()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()

    # ----------------------------------------------------------------- reads

    def registrations(self, tenant: str) -> list[Registration]:
        return list(self._regs.get(tenant, {}).values())

    def get(self, tenant: str, registration_id: str) -> Registration | None:
        return self._regs.get(tenant, {}).get(registration_id)

    def matching(
        self,
        tenant: str,
        operation: str,
        *,
        entity_id: str | None = None,
        types: Iterable[str] | None = None,
        attrs: Iterable[str] | None = None,
        geometry: GeoQuery | dict[str, Any] | None = None,
        csf: str | None = None,
        scope: str | None = None,
        terms: TermExpander | None = None,
    ) -> list[Registration]:
        regs = self._regs.get(tenant)
        if not regs:
            return []
        now = datetime.now(UTC)
        kinds = None if types is None else tuple(types)
        wanted = tuple(attrs) if attrs else None
        names = _names(terms)
        csf_test = compile_selection(Selection(q=parse_q(csf)), names) if csf else None
        scope_test = (
            compile_selection(Selection(scope=parse_scopeq(scope)), names) if scope else None
        )
        geo_tests = _geo_test(geometry) if geometry is not None else None
        out = []
        for reg in regs.values():
            if not reg.serves(operation) or reg.expired(now):
                continue
            if not reg.covers(entity_id, kinds, wanted):
                continue
            record = as_record(reg)
            if csf_test is not None and not csf_test.matches(record, now=now):
                continue
            if scope_test is not None and not scope_test.matches(record, now=now):
                continue
            if geo_tests is not None and any(
                ("https://uri.etsi.org/ngsi-ld/" + s) in record.attrs for s in _SPACES
            ):
                if not any(t.matches(record, now=now) for t in geo_tests):
                    continue
            out.append(reg)
        return out

    def query(self, tenant: str, flt: RegistrationFilter) -> list[Registration]:
        """The registrations a discovery query (§5.10.2) selects, from memory."""
        now = datetime.now(UTC)
        return [r for r in self.registrations(tenant) if flt.matches(r, now)]

    # ---------------------------------------------------------------- changes

    async def _apply(self, payload: str) -> None:
        try:
            data = orjson.loads(payload)
            tenant, rid = data["tenant"], data["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed registration notification %r", payload[:200])
            return
        await self.refresh(tenant, rid)

    async def refresh(self, tenant: str, registration_id: str) -> None:
        """Re-read one registration after a change (created, updated or deleted)."""
        async with self._lock:
            try:
                schema = await self._tenants.schema(tenant, create=False)
                row = await self._repo.get(schema, registration_id)
            except (NgsiLdError, asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
                row = None  # the tenant or its schema is gone: so is the registration
            regs = dict(self._regs.get(tenant, {}))
            if row is None:
                regs.pop(registration_id, None)
            else:
                try:
                    regs[registration_id] = Registration.from_doc(row.doc)
                except Exception:  # a stored document this version cannot read: keep going
                    log.exception("registration %s of %r cannot be read", registration_id, tenant)
                    regs.pop(registration_id, None)
            # creation order, as the store gives it
            ordered = sorted(regs.values(), key=lambda r: (r.created_at or "", r.id))
            self._regs[tenant] = {r.id: r for r in ordered}

    async def reload(self) -> None:
        """Load every registration of every tenant (start-up, after a lost listener)."""
        async with self._lock:
            fresh: dict[str, dict[str, Registration]] = {}
            for tenant, schema in await self._tenants.all():
                regs: dict[str, Registration] = {}
                try:
                    rows = await self._repo.all(schema)
                except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
                    # A tenant whose schema went away meanwhile, or is not migrated yet: the
                    # others still load (its change events refresh it once it exists).
                    log.warning("registrations of tenant %r not loaded: %s", tenant, exc)
                    continue
                for row in rows:
                    try:
                        regs[row.id] = Registration.from_doc(row.doc)
                    except Exception:
                        log.exception("registration %s of %r cannot be read", row.id, tenant)
                if regs:
                    fresh[tenant] = regs
            self._regs = fresh
