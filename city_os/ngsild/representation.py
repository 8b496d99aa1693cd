"""Pure rendering of stored entities into NGSI-LD representations (§4.5).

Layer: ngsild/. normalized, concise and keyValues (a.k.a. simplified), GeoJSON Features, with
``attrs``/``pick``/``omit`` projection, ``lang`` selection of LanguageProperties and system
attributes on request. Names are compacted through the request's cached term map.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from city_os.ngsild.entity import ATTRIBUTE_MEMBERS, Attrs, Instance

Format = Literal["normalized", "concise", "keyValues"]


class TermCompactor(Protocol):
    def compact_attr(self, iri: str) -> str: ...
    def compact_type(self, iri: str) -> str: ...
    def compact_vocab_value(self, iri: str) -> str: ...


@dataclass(frozen=True)
class EntityRecord:
    id: str
    types: list[str]
    attrs: Attrs
    scopes: list[str] | None
    created_at: str
    modified_at: str
    expires_at: str | None = None


@dataclass(frozen=True)
class RenderOptions:
    format: Format = "normalized"
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None  # expanded IRIs to keep (the `attrs` parameter)
    pick: frozenset[str] | None = None  # expanded IRIs, plus "id"/"type"/"scope" verbatim
    omit: frozenset[str] | None = None
    lang: str | None = None
    geometry_property: str | None = None  # expanded IRI for GeoJSON output
    # Linked Entity retrieval (§4.5.23): Relationship IRI → projection of the entities it
    # links to (``pick=rel{a,b}`` / ``omit=rel{c}``); unlisted Relationships: no projection.
    linked: tuple[tuple[str, RenderOptions], ...] = ()


def render(record: EntityRecord, tm: TermCompactor, opts: RenderOptions) -> dict[str, Any]:
    """The representation of ``record`` in ``opts.format``, projected by ``opts``.

    Members come in a fixed order: id, type, scope, the attributes in stored order, then the
    system attributes when ``opts.sys_attrs`` asks for them (expiresAt; createdAt and modifiedAt
    except in keyValues).
    """
    # Per-call constants, hoisted out of the attribute loop (it runs for every entity of a page).
    keep_all = opts.attrs is None and opts.pick is None and opts.omit is None
    key_values = opts.format == "keyValues"
    out: dict[str, Any] = {}
    if keep_all or _keep("id", opts):
        out["id"] = record.id
    if keep_all or _keep("type", opts):
        types = [tm.compact_type(t) for t in record.types]
        out["type"] = types[0] if len(types) == 1 else types
    if record.scopes and (keep_all or _keep("scope", opts)):
        out["scope"] = record.scopes[0] if len(record.scopes) == 1 else list(record.scopes)
    copied = _copied_members(opts)
    now: datetime | None = None
    for iri, instances in record.attrs.items():
        if not keep_all and not _keep_attr(iri, opts):
            continue
        if _has_member(instances, "expiresAt"):
            # Transient attribute instances (§4.22) vanish once expired.
            now = now or datetime.now(UTC)
            instances = [i for i in instances if instance_alive(i, now)]
            if not instances:
                continue
        name = tm.compact_attr(iri)
        if key_values and _has_member(instances, "datasetId"):
            # Simplified multi-attributes become a dataset map, "@none" for the default (§4.5.4)
            out[name] = {
                "dataset": {
                    i.get("datasetId", "@none"): _render_instance(i, tm, opts, copied)
                    for i in instances
                }
            }
        elif len(instances) == 1:
            out[name] = _render_instance(instances[0], tm, opts, copied)
        else:
            out[name] = [_render_instance(i, tm, opts, copied) for i in instances]
    if record.expires_at and opts.sys_attrs and _keep("expiresAt", opts):
        out["expiresAt"] = record.expires_at
    if opts.sys_attrs and not key_values:
        out["createdAt"] = record.created_at
        out["modifiedAt"] = record.modified_at
    return out


def _has_member(instances: list[Instance], member: str) -> bool:
    """Whether any instance has ``member`` (a plain loop: cheaper than ``any()`` on a genexpr)."""
    for inst in instances:
        if member in inst:
            return True
    return False


def instance_alive(inst: Instance, now: datetime) -> bool:
    """Whether a transient attribute instance (§4.22, its own ``expiresAt``) is still alive;
    an instance without expiresAt always is."""
    expires = inst.get("expiresAt")
    if not isinstance(expires, str):
        return True
    try:
        when = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when > now


def _keep(member: str, opts: RenderOptions) -> bool:
    if opts.pick is not None and member not in opts.pick:
        return False
    return not (opts.omit is not None and member in opts.omit)


def _keep_attr(iri: str, opts: RenderOptions) -> bool:
    if opts.attrs is not None and iri not in opts.attrs:
        return False
    return _keep(iri, opts)


# System members of an attribute instance, output only with ``sysAttrs``.
_SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "expiresAt"})


def _copied_set(fmt: Format, sys_attrs: bool) -> frozenset[str]:
    """The instance members ``fmt`` outputs exactly as stored (not compacted, not reshaped)."""
    left_out = {"type", "vocab", "objectType"}  # "type" is output first, or not at all
    if fmt == "normalized":
        left_out.add("objectList")
    if not sys_attrs:
        left_out |= _SYSTEM_MEMBERS
    return ATTRIBUTE_MEMBERS - left_out


_COPIED: dict[tuple[Format, bool], frozenset[str]] = {
    (fmt, sys_attrs): _copied_set(fmt, sys_attrs)
    for fmt in ("normalized", "concise")
    for sys_attrs in (False, True)
}
# Kinds whose concise form is the bare value when nothing else is left.
_BARE_VALUE_KINDS = ("Property", "GeoProperty")


def _copied_members(opts: RenderOptions) -> frozenset[str] | None:
    """``_copied_set`` for ``opts``; None for keyValues (no members: simplified values)."""
    if opts.format == "keyValues":
        return None
    return _COPIED[opts.format, opts.sys_attrs]


def render_instance(inst: Instance, tm: TermCompactor, opts: RenderOptions) -> Any:
    """One stored attribute instance (or sub-attribute) in ``opts.format``."""
    return _render_instance(inst, tm, opts, _copied_members(opts))


def _render_instance(
    inst: Instance, tm: TermCompactor, opts: RenderOptions, copied: frozenset[str] | None
) -> Any:
    """``render_instance`` with ``_copied_members(opts)`` computed once by the caller."""
    kind = inst.get("type", "Property")
    if copied is None:
        return _simple_value(inst, kind, tm, opts)
    normalized = opts.format == "normalized"
    out: dict[str, Any] = {"type": kind} if normalized else {}
    for key, value in inst.items():
        if key in copied:  # the common case: one set lookup per member
            out[key] = value
        elif key in ATTRIBUTE_MEMBERS:
            if key == "vocab":
                out[key] = _compact_vocab(value, tm)
            elif key == "objectType":
                types = [tm.compact_type(t) for t in value]
                out[key] = types[0] if len(types) == 1 else types
            elif key == "objectList" and normalized:
                out[key] = [{"object": v} for v in value]
            # else "type" (already output) or a system member without sysAttrs: left out
        elif isinstance(value, dict):  # a sub-attribute
            out[tm.compact_attr(key)] = _render_instance(value, tm, opts, copied)
        else:  # an unknown scalar member: pass it through rather than fail the read
            out[key] = value
    if kind == "LanguageProperty" and opts.lang is not None:
        text, lang = _pick_language(inst.get("languageMap") or {}, opts.lang)
        out.pop("languageMap", None)
        if normalized:
            out["type"] = "Property"
        out["value"] = text
        out["lang"] = lang
    elif not normalized and kind in _BARE_VALUE_KINDS and len(out) == 1 and "value" in out:
        return out["value"]  # concise: a Property with nothing but its value
    return out


def _compact_vocab(value: Any, tm: TermCompactor) -> Any:
    if isinstance(value, list):
        return [tm.compact_vocab_value(v) for v in value]
    return tm.compact_vocab_value(value)


def _simple_value(inst: Instance, kind: str, tm: TermCompactor, opts: RenderOptions) -> Any:
    if kind == "Relationship":
        return inst.get("object")
    if kind == "LanguageProperty":
        lmap = inst.get("languageMap") or {}
        if opts.lang is not None:
            return _pick_language(lmap, opts.lang)[0]
        return {"languageMap": lmap}
    if kind == "VocabProperty":
        return {"vocab": _compact_vocab(inst.get("vocab"), tm)}
    if kind == "JsonProperty":
        return {"json": inst.get("json")}
    if kind == "ListProperty":
        return inst.get("valueList")
    if kind == "ListRelationship":
        return inst.get("objectList")
    return inst.get("value")


def _pick_language(lmap: dict[str, Any], wanted: str) -> tuple[Any, str]:
    """Best match for a `lang` parameter (comma list with optional q-values, or '*')."""
    prefs: list[tuple[float, str]] = []
    for part in wanted.split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        if tag:
            prefs.append((weight, tag))
    prefs.sort(key=lambda p: -p[0])
    for _, tag in prefs:
        if tag == "*":
            break
        if tag in lmap:
            return lmap[tag], tag
        for key in lmap:
            if key.split("-")[0] == tag.split("-")[0]:
                return lmap[key], key
    if "@none" in lmap:
        return lmap["@none"], "@none"
    for key, text in lmap.items():
        return text, key
    return None, "@none"


def to_feature(
    record: EntityRecord, body: dict[str, Any], geometry_iri: str, tm: TermCompactor
) -> dict[str, Any]:
    """Wrap a rendered entity as a GeoJSON Feature (§4.5.16)."""
    geometry = None
    instances = record.attrs.get(geometry_iri, [])
    # The default instance (no datasetId) is the Feature's geometry when there is one.
    for inst in sorted(instances, key=lambda i: "datasetId" in i):
        if inst.get("type") == "GeoProperty":
            geometry = inst.get("value")
            break
    props = {k: v for k, v in body.items() if k != "id"}
    return {"id": record.id, "type": "Feature", "geometry": geometry, "properties": props}
