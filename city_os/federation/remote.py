"""Reading an entity a context source answered into the stored form the merge works on.

Layer: federation/ (pure: no I/O). A distributed query reads every entity each source answers
(normalized or concise, compacted with the request's @context). The full input parser
(ngsild/entity.py ``parse_entity``) costs about 20 µs per attribute; a page of 100 entities
from three sources paid more for it than for rendering the page. ``remote_record`` therefore
reads the common attribute shapes itself — a Property with a scalar value, a Relationship to
one entity, a GeoProperty holding a geometry, each with only ``type``, its value and system
timestamps — with the same checks the parser makes on them, and hands every other attribute
(sub-attributes, datasetId, observedAt, unitCode, other types, multi-attributes, concise
values) to the parser's own ``parse_attribute``. The record is the one the parser would make:
expanded names, the source's ``createdAt``/``modifiedAt`` kept where it sent them and no
invented ones. An invalid entity gives None (the caller reports the source).
"""

from __future__ import annotations

from typing import Any

from city_os.core.request import RequestContext
from city_os.errors import NgsiLdError
from city_os.ngsild.attributes import check_members, parse_attribute, parse_entity
from city_os.ngsild.entity import (
    ENTITY_MEMBERS,
    GEO_ATTRIBUTE_NAMES,
    NULL_URI,
    OUTPUT_ONLY_MEMBERS,
    PROOF_ATTRIBUTE,
    RESERVED_ATTRIBUTE_NAMES,
    check_entity_id,
    expand_attr_name,
    parse_scopes,
    parse_types,
)
from city_os.ngsild.geometry import check_geometry
from city_os.ngsild.representation import EntityRecord

_TIMES = ("createdAt", "modifiedAt")
# Members of an attribute read here; any other member sends the attribute to the parser.
_PLAIN = {
    "Property": frozenset({"type", "value", *_TIMES}),
    "Relationship": frozenset({"type", "object", *_TIMES}),
    "GeoProperty": frozenset({"type", "value", *_TIMES}),
}
_SCALARS = (str, int, float, bool)
_NUMBERS = (int, float)  # bool is its own type: not a coordinate
# Entity members that need the parser's handling of the whole entity.
_UNUSUAL = ("@id", "@type", "expiresAt")
_UNSEEN: Any = object()


def remote_record(ctx: RequestContext, body: Any) -> EntityRecord | None:
    """An entity answered by a source as a stored-form record; None when it is not valid
    NGSI-LD."""
    return Reader(ctx).record(body)


class Reader:
    """Reads the entities of one answer; names and types repeat from entity to entity, so
    each is checked and expanded once per answer."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self._names: dict[str, str] = {}
        self._types: dict[str, list[str]] = {}
        # (name, type, member names) → the attribute type when it is a plain shape, else None
        self._shapes: dict[tuple[str, ...], str | None] = {}

    def record(self, body: Any) -> EntityRecord | None:
        """The record of ``body``; None when it is not valid NGSI-LD."""
        if not isinstance(body, dict):
            return None
        ctx = self.ctx
        try:
            if "@id" in body or "@type" in body or "expiresAt" in body:  # _UNUSUAL
                return _parsed(ctx, body)
            check_members(body, ctx.limits)
            entity_id = check_entity_id(body.get("id"))
            types = self._types_of(body.get("type"))
            if types is None:
                return None
            scopes = parse_scopes(body["scope"]) if "scope" in body else None
            attrs: dict[str, list[dict[str, Any]]] = {}
            known = self._names
            for name, raw in body.items():
                if name in ENTITY_MEMBERS:
                    continue
                iri = known.get(name)
                if iri is None:
                    if name in RESERVED_ATTRIBUTE_NAMES or name in OUTPUT_ONLY_MEMBERS:
                        return None
                    iri = known[name] = expand_attr_name(ctx.terms, name)
                plain = self._plain(name, raw)
                if plain is not None:
                    attrs[iri] = [plain]
                else:
                    parsed = parse_attribute(name, raw, ctx.terms, ctx.now)
                    attrs[iri] = _with_source_times(parsed, raw)
        except NgsiLdError:
            return None
        return EntityRecord(
            entity_id,
            types,
            attrs,
            scopes,
            str(body.get("createdAt", "")),
            str(body.get("modifiedAt", "")),
        )

    def _plain(self, name: str, raw: Any) -> dict[str, Any] | None:
        """``_plain_instance`` with the checks of the attribute's shape (its name, type and
        member names, the same from entity to entity) made once per answer."""
        if not isinstance(raw, dict):
            return None
        kind = raw.get("type")
        if type(kind) is not str:
            return None
        key = (name, kind, *raw)
        shape = self._shapes.get(key, _UNSEEN)
        if shape is _UNSEEN:
            shape = self._shapes[key] = kind if _plain_shape(name, kind, raw) else None
        if shape is None:
            return None
        return _plain_values(kind, name, raw)

    def _types_of(self, raw: Any) -> list[str] | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            return parse_types(self.ctx.terms, raw, self.ctx.limits)
        types = self._types.get(raw)
        if types is None:
            types = self._types[raw] = parse_types(self.ctx.terms, raw, self.ctx.limits)
        return list(types)


def _plain_instance(name: str, raw: Any) -> dict[str, Any] | None:
    """The stored instance of a plain attribute (see the module docstring), or None when the
    parser must read it. Raises what the parser raises for the same input."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or not _plain_shape(name, kind, raw):
        return None
    return _plain_values(kind, name, raw)


def _plain_shape(name: str, kind: str, raw: dict[str, Any]) -> bool:
    """Whether an attribute of this name, type and members is one ``_plain_values`` reads."""
    members = _PLAIN.get(kind)
    if members is None or not members.issuperset(raw):
        return False
    # the parser's rules for these names (and its messages) apply
    return not (name == PROOF_ATTRIBUTE or (name in GEO_ATTRIBUTE_NAMES and kind != "GeoProperty"))


def _plain_values(kind: str, name: str, raw: dict[str, Any]) -> dict[str, Any] | None:
    """The instance of a plain-shaped attribute, or None when its value needs the parser."""
    if kind == "Property":
        value = raw.get("value")
        if not isinstance(value, _SCALARS) or value == NULL_URI:
            return None
        inst: dict[str, Any] = {"type": kind, "value": value}
    elif kind == "Relationship":
        target = raw.get("object")
        if not isinstance(target, str) or target == NULL_URI:
            return None
        inst = {"type": kind, "object": check_entity_id(target, f"object of relationship {name!r}")}
    else:
        value = raw.get("value")
        if not isinstance(value, dict) or None in value.values() or "bbox" in value:
            return None
        inst = {
            "type": kind,
            "value": value if _plain_point(value) else check_geometry(name, value),
        }
    if len(raw) > 2:  # beyond type and its value: system timestamps
        for member in _TIMES:
            stamp = raw.get(member)
            if isinstance(stamp, str):
                inst[member] = stamp
    return inst


def _plain_point(value: dict[str, Any]) -> bool:
    """A GeoJSON Point that ``check_geometry`` accepts as it is (checked here without it)."""
    if value.get("type") != "Point" or len(value) != 2:
        return False
    coords = value.get("coordinates")
    if type(coords) is not list or len(coords) not in (2, 3):
        return False
    if not all(type(c) in _NUMBERS for c in coords):
        return False
    return bool(-180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)


def _parsed(ctx: RequestContext, body: dict[str, Any]) -> EntityRecord:
    """The whole entity through the parser (members only it handles)."""
    parsed = parse_entity(body, ctx.terms, ctx.now, limits=ctx.limits)
    attrs = {}
    for iri, instances in parsed.attrs.items():
        attrs[iri] = _with_source_times(instances, body.get(ctx.terms.compact_attr(iri)))
    return EntityRecord(
        parsed.id,
        parsed.types,
        attrs,
        parsed.scopes,
        str(body.get("createdAt", "")),
        str(body.get("modifiedAt", "")),
        parsed.expires_at,
    )


def _with_source_times(instances: list[dict[str, Any]], raw: Any) -> list[dict[str, Any]]:
    """Parsed instances with the parser's timestamps replaced by the source's own."""
    raws = raw if isinstance(raw, list) else [raw]
    return [_source_times(i, r) for i, r in zip(instances, raws, strict=False)]


def _source_times(instance: dict[str, Any], raw: Any) -> dict[str, Any]:
    kept = {k: v for k, v in instance.items() if k not in _TIMES}
    if isinstance(raw, dict):
        for member in _TIMES:
            if isinstance(raw.get(member), str):
                kept[member] = raw[member]
    return kept
