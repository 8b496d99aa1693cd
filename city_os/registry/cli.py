"""``city-os schemas list|load DIR|validate FILE`` and ``city-os load-sample``, for data stewards.

Layer: registry/ entry points. ``list``, ``load`` and ``load-sample`` wire the same services as
the API (pool, EntityService with the schema hook) without a server; the registry changes they
make are announced to running brokers by the database (NOTIFY). ``validate`` needs no database:
it checks documents offline against the bundled models. A document with an ``@context`` is read as
NGSI-LD (normalized or concise) and projected to key-values with the model's @context, exactly as
the broker does on a write; any other document is taken to be key-values already.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from city_os.config import Settings
from city_os.core.contexts import ContextLoader
from city_os.core.entities import EntityService
from city_os.errors import NgsiLdError
from city_os.ngsild.attributes import parse_entity
from city_os.ngsild.entity import now_iso
from city_os.ngsild.representation import EntityRecord
from city_os.registry.active import ActiveSchemas
from city_os.registry.bundle import (
    load_models,
    load_sample_entities,
    model_context,
)
from city_os.registry.projection import key_values
from city_os.registry.service import SchemaRegistry
from city_os.registry.validation import (
    DEFAULT_SCHEMAS_DIR,
    BundledModel,
    SchemaValidator,
    Violation,
    load_bundled,
)
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.schemas import SchemaRepository

COMMANDS = ("schemas", "load-sample")


def add_commands(sub: Any) -> None:
    """Add ``schemas`` and ``load-sample`` to the ``city-os`` subcommand parsers."""
    sample = sub.add_parser("load-sample", help="load bundled schemas and the Saga City sample")
    sample.add_argument("--tenant", default="", help="NGSILD-Tenant (default: the default tenant)")
    schemas = sub.add_parser("schemas", help="schema registry: list, load, validate")
    actions = schemas.add_subparsers(dest="schemas_command", required=True)
    listing = actions.add_parser("list", help="registered types and their versions")
    listing.add_argument("--tenant", default="")
    load = actions.add_parser("load", help="register and activate every <DIR>/<Type>/ model")
    load.add_argument("dir", type=Path)
    load.add_argument("--tenant", default="")
    check = actions.add_parser("validate", help="validate a JSON file offline (no database)")
    check.add_argument("file", type=Path, help="one document or an array of them")
    check.add_argument("--type", help="model to use (default: each document's type)")
    check.add_argument("--schemas", type=Path, default=DEFAULT_SCHEMAS_DIR, help="models folder")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run a command of ``COMMANDS``; returns the exit status."""
    try:
        return _run(args, settings)
    except NgsiLdError as err:  # e.g. an invalid schema in the folder loaded
        print(f"error: {err.detail}")
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "load-sample":
        report = asyncio.run(load_sample(settings, args.tenant))
        print(report.summary())
        return 0
    if args.schemas_command == "validate":
        try:
            loaded = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"{args.file}: {exc}")
            return 2
        return asyncio.run(validate_documents(loaded, args.type, args.schemas))
    if args.schemas_command == "load":
        if not args.dir.is_dir():
            print(f"{args.dir} is not a folder")
            return 2
        return asyncio.run(_load(settings, args.dir, args.tenant))
    return asyncio.run(_list(settings, args.tenant))


# -- wiring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    registry: SchemaRegistry
    entities: EntityService
    contexts: ContextLoader


@asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The API's services without a server (and without LISTEN: this process is the writer)."""
    pool = await create_pool(settings.database_url, 1, 4)
    contexts = ContextLoader(
        timeout=settings.context_fetch_timeout,
        max_bytes=settings.context_max_bytes,
        ttl=settings.context_cache_ttl,
    )
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        tenants = Tenants(pool)
        entities = EntityService(EntityRepository(pool), tenants, settings.base_url)
        repository = SchemaRepository(pool)
        active = ActiveSchemas(repository, contexts)
        await active.start()
        entities.validators.append(active.validate)
        yield Services(SchemaRegistry(repository, active, tenants), entities, contexts)
    finally:
        await contexts.close()
        await pool.close()


@dataclass(frozen=True)
class SampleReport:
    types: int
    new_versions: int
    entities: dict[str, int]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {t}" for t, n in self.entities.items())
        return f"schemas: {self.types} types ({self.new_versions} new versions); entities: {counts}"


async def load_sample(settings: Settings, tenant: str = "") -> SampleReport:
    """``city-os load-sample``: bundled schemas, then the Saga City sites and shelters."""
    async with services(settings) as s:
        models = await load_models(s.registry, s.contexts, tenant)
        written = await load_sample_entities(s.entities, s.contexts, tenant)
    return SampleReport(len(models), sum(m.created for m in models), written)


async def _load(settings: Settings, directory: Path, tenant: str) -> int:
    async with services(settings) as s:
        for model in await load_models(s.registry, s.contexts, tenant, directory):
            state = "new" if model.created else "unchanged"
            print(f"{model.type_name}: version {model.info.version} ({state}, active)")
    return 0


async def _list(settings: Settings, tenant: str) -> int:
    pool = await create_pool(settings.database_url, 1, 1)
    try:
        infos = await SchemaRepository(pool).versions(tenant)
    finally:
        await pool.close()
    for info in infos:
        flag = "active" if info.active else ""
        print(f"{info.term}\t{info.type_iri}\tversion {info.version}\t{info.created_at}\t{flag}")
    if not infos:
        print(f"no schemas registered in tenant {tenant!r}")
    return 0


# -- offline validation ------------------------------------------------------------------------


async def validate_documents(loaded: Any, type_name: str | None, schemas_dir: Path) -> int:
    """Print each document's verdict; 0 when all are valid, else 1."""
    documents = loaded if isinstance(loaded, list) else [loaded]
    models = {m.type_name: m for m in load_bundled(schemas_dir)}
    validators: dict[str, SchemaValidator] = {}
    contexts = ContextLoader()
    invalid = 0
    try:
        for index, doc in enumerate(documents):
            name = type_name or (doc.get("type") if isinstance(doc, dict) else None)
            label = doc.get("id", f"#{index}") if isinstance(doc, dict) else f"#{index}"
            model = models.get(name) if isinstance(name, str) else None
            if model is None:
                print(f"INVALID {label}: no bundled model for type {name!r} (use --type)")
                invalid += 1
                continue
            if model.type_name not in validators:
                validators[model.type_name] = SchemaValidator(model.schema)
            try:
                violations = validators[model.type_name].validate(
                    await _key_values(doc, model, contexts)
                )
            except NgsiLdError as err:
                violations = [Violation("", err.detail, "ngsi-ld")]
            if violations:
                invalid += 1
                print(f"INVALID {label} ({model.type_name})")
                for v in violations:
                    print(f"  {v.pointer or '/'}: {v.message}")
            else:
                print(f"OK {label} ({model.type_name})")
    finally:
        await contexts.close()
    return 1 if invalid else 0


async def _key_values(doc: Any, model: BundledModel, contexts: ContextLoader) -> Any:
    if not isinstance(doc, dict) or "@context" not in doc:
        return doc  # key-values already (or not an object: the schema says so)
    now = now_iso()
    parsed = parse_entity(doc, await contexts.term_map(doc["@context"]), now)
    record = EntityRecord(parsed.id, parsed.types, parsed.attrs, parsed.scopes, now, now)
    terms = await contexts.term_map(model_context(model.context))
    return key_values(record, terms.expand_type(model.type_name), terms)
