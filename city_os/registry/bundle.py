"""Schema registry, bundled content: the models of ``schemas/`` and the Saga City sample entities.

Layer: registry/ service. ``load_models`` registers and activates every ``<dir>/<Type>/`` model
with its own @context (inline, so no network), idempotently: content a type already has is not a
new version. ``load_sample_entities`` upserts the 113 designated emergency evacuation sites and 112
designated shelters of ``connectors/saga_opendata.py`` through ``EntityService``, so validation,
events and the outbox apply as for any client; ids are the stable 共通ID, so loading twice
replaces rather than duplicates.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from city_os.core.contexts import ContextLoader
from city_os.core.entities import EntityService, RequestContext
from city_os.ngsild.entity import now_iso
from city_os.registry.service import SchemaRegistry
from city_os.registry.validation import DEFAULT_SCHEMAS_DIR, load_bundled
from city_os.store.postgres.schemas import VersionInfo

SAMPLE_TYPES = ("EvacuationSite", "EvacuationShelter")


@dataclass(frozen=True)
class LoadedModel:
    type_name: str
    info: VersionInfo
    created: bool


def model_context(context_document: dict[str, Any]) -> Any:
    """The @context value of a bundled ``context.jsonld``."""
    return context_document.get("@context", context_document)


async def load_models(
    registry: SchemaRegistry,
    contexts: ContextLoader,
    tenant: str = "",
    directory: Path = DEFAULT_SCHEMAS_DIR,
) -> list[LoadedModel]:
    """Register and activate every bundled model of ``directory`` in ``tenant``."""
    loaded: list[LoadedModel] = []
    for model in load_bundled(directory):
        context = model_context(model.context)
        ctx = RequestContext(tenant, await contexts.term_map(context), now_iso(), context)
        info, created = await registry.register(ctx, model.type_name, model.schema, activate=True)
        loaded.append(LoadedModel(model.type_name, info, created))
    return loaded


def _saga_opendata() -> ModuleType:
    """``connectors.saga_opendata``; the installed package holds only ``city_os``, so from a
    source checkout (where ``schemas/`` also lives) the checkout root is put on the path."""
    try:
        return importlib.import_module("connectors.saga_opendata")
    except ModuleNotFoundError:
        sys.path.append(str(DEFAULT_SCHEMAS_DIR.parent))
        return importlib.import_module("connectors.saga_opendata")


async def load_sample_entities(
    entities: EntityService, contexts: ContextLoader, tenant: str = ""
) -> dict[str, int]:
    """Upsert the Saga City sites and shelters; returns the number written per type.

    Raises RuntimeError naming the first failures if any entity is refused (e.g. by a schema).
    """
    connector = _saga_opendata()
    batches = {
        "EvacuationSite": connector.emergency_sites(),
        "EvacuationShelter": connector.shelters(),
    }
    written: dict[str, int] = {}
    for type_name, bodies in batches.items():
        context = bodies[0]["@context"]
        ctx = RequestContext(tenant, await contexts.term_map(context), now_iso(), context)
        result = await entities.batch.upsert(ctx, bodies, replace=True)
        if result.errors:
            first = "; ".join(f"{eid}: {err.detail}" for eid, err in result.errors[:3])
            raise RuntimeError(f"{len(result.errors)} {type_name} entities refused: {first}")
        written[type_name] = len(result.success)
    return written
