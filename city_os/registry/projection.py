"""Schema registry, pure projection: a stored NGSI-LD entity → the key-values document its type's
JSON Schema describes, and violations → the one BadRequestData a client gets.

Layer: registry/ (no I/O). Smart-Data-Models-style schemas describe the key-values form with the
model's own terms, so the entity is rendered as keyValues and compacted with the term map of the
@context registered with the SCHEMA (not the request's): the same entity sent with any context, in
any representation, projects to the same document. Three adjustments make it match what stewards
write: ``type`` is the one type the schema belongs to (an entity may carry several), JSON-LD value
objects (``{"@type": "DateTime", "@value": …}``) become their plain value, and the entity members
``scope`` and ``expiresAt``, which are not attributes, are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from city_os.errors import BadRequestData
from city_os.ngsild.representation import EntityRecord, RenderOptions, TermCompactor, render
from city_os.registry.validation import Violation

_KEY_VALUES = RenderOptions(format="keyValues")
_NOT_ATTRIBUTES = ("scope", "expiresAt")
# Violations quoted in the readable detail; all of them are in the ``violations`` member.
_DETAIL_MAX = 5


def key_values(record: EntityRecord, type_iri: str, terms: TermCompactor) -> dict[str, Any]:
    """The key-values document of ``record`` as the schema of ``type_iri`` sees it."""
    doc = render(record, terms, _KEY_VALUES)
    for member in _NOT_ATTRIBUTES:
        doc.pop(member, None)
    doc["type"] = terms.compact_type(type_iri)
    return {name: _plain(value) for name, value in doc.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if "@value" in value:
            return value["@value"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Failure:
    """The verdict of one schema on one entity."""

    term: str
    version: int
    violations: list[Violation]


def violation_list(violations: list[Violation]) -> list[dict[str, str]]:
    return [{"pointer": v.pointer, "message": v.message, "keyword": v.keyword} for v in violations]


def invalid_entity(entity_id: str, failures: list[Failure]) -> BadRequestData:
    """400 BadRequestData with every violation (JSON pointer into the key-values document)."""
    violations = [v for f in failures for v in f.violations]
    schemas = ", ".join(f"{f.term} (version {f.version})" for f in failures)
    quoted = "; ".join(f"{v.pointer or '/'}: {v.message}" for v in violations[:_DETAIL_MAX])
    more = len(violations) - _DETAIL_MAX
    if more > 0:
        quoted += f"; and {more} more"
    return BadRequestData(
        f"entity {entity_id} does not match the schema of {schemas}: {quoted}",
        violations=violation_list(violations),
    )
