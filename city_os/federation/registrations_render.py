"""A stored CSourceRegistration as a response body, compacted with the request's @context.

Layer: federation/ (pure, no I/O). The inverse of registrations_parse: entity types and
attribute names (and the names of context-source properties) are compacted with the term map
of the request, so a registration written with one @context reads back in another's terms
(or as full IRIs under the core context alone, §5.10.1). An EntityInfo with a single type shows
it as a string, as clients write it. ``createdAt``/``modifiedAt`` only with
``options=sysAttrs``; the status members once the broker has called the source.
"""

from __future__ import annotations

from typing import Any, Protocol

from city_os.federation.model import Doc

_STATUS = ("status", "timesSent", "timesFailed", "lastSuccess", "lastFailure")
_ORDER = (
    "id", "type", "registrationName", "description", "endpoint", "information", "tenant",
    "contextSourceInfo", "scope", "mode", "operations", "location", "observationSpace",
    "operationSpace", "observationInterval", "managementInterval", "expiresAt", "refreshRate",
    "management",
)  # fmt: skip


class Compactor(Protocol):
    def compact_attr(self, iri: str) -> str: ...
    def compact_type(self, iri: str) -> str: ...


def _entity(raw: Doc, terms: Compactor) -> Doc:
    out: Doc = {k: raw[k] for k in ("id", "idPattern") if k in raw}
    types = [terms.compact_type(t) for t in raw.get("type", ())]
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    return out


def _information(raw: Doc, terms: Compactor) -> Doc:
    out: Doc = {}
    if "entities" in raw:
        out["entities"] = [_entity(e, terms) for e in raw["entities"]]
    for member in ("propertyNames", "relationshipNames"):
        if member in raw:
            out[member] = [terms.compact_attr(n) for n in raw[member]]
    return out


def render_registration(doc: Doc, terms: Compactor, *, sys_attrs: bool = False) -> Doc:
    """The CSourceRegistration of a stored document (``Registration.to_doc`` form)."""
    out: Doc = {}
    for name in _ORDER:
        if name not in doc:
            continue
        value: Any = doc[name]
        if name == "information":
            value = [_information(i, terms) for i in value]
        out[name] = value
    for iri, value in (doc.get("properties") or {}).items():
        out[terms.compact_attr(iri)] = value
    if sys_attrs:
        for name in ("createdAt", "modifiedAt"):
            if name in doc:
                out[name] = doc[name]
    for name in _STATUS:
        if name in doc:
            out[name] = doc[name]
    return out
