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
    out: dict[str, Any] = {}
    if _keep("id", opts):
        out["id"] = record.id
    if _keep("type", opts):
        types = [tm.compact_type(t) for t in record.types]
        out["type"] = types[0] if len(types) == 1 else types
    if record.scopes and _keep("scope", opts):
        out["scope"] = record.scopes[0] if len(record.scopes) == 1 else list(record.scopes)
    now: str | None = None
    for iri, instances in record.attrs.items():
        if not _keep_attr(iri, opts):
            continue
        if any("expiresAt" in inst for inst in instances):
            # Transient attribute instances (§4.22) vanish once expired.
            now = now or datetime.now(UTC).isoformat().replace("+00:00", "Z")
            instances = [i for i in instances if _alive(i, now)]
            if not instances:
                continue
        name = tm.compact_attr(iri)
        if opts.format == "keyValues" and any("datasetId" in i for i in instances):
            # Simplified multi-attributes become a dataset map, "@none" for the default (§4.5.4)
            out[name] = {
                "dataset": {
                    i.get("datasetId", "@none"): render_instance(i, tm, opts) for i in instances
                }
            }
            continue
        rendered = [render_instance(inst, tm, opts) for inst in instances]
        out[name] = rendered[0] if len(rendered) == 1 else rendered
    if record.expires_at and opts.sys_attrs and _keep("expiresAt", opts):
        out["expiresAt"] = record.expires_at
    if opts.sys_attrs and opts.format != "keyValues":
        out["createdAt"] = record.created_at
        out["modifiedAt"] = record.modified_at
    return out


def _alive(inst: Instance, now: str) -> bool:
    expires = inst.get("expiresAt")
    if not isinstance(expires, str):
        return True
    try:
        when = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when > datetime.fromisoformat(now.replace("Z", "+00:00"))


def _keep(member: str, opts: RenderOptions) -> bool:
    if opts.pick is not None and member not in opts.pick:
        return False
    return not (opts.omit is not None and member in opts.omit)


def _keep_attr(iri: str, opts: RenderOptions) -> bool:
    if opts.attrs is not None and iri not in opts.attrs:
        return False
    return _keep(iri, opts)


def render_instance(inst: Instance, tm: TermCompactor, opts: RenderOptions) -> Any:
    kind = inst.get("type", "Property")
    if opts.format == "keyValues":
        return _simple_value(inst, kind, tm, opts)
    out: dict[str, Any] = {}
    if opts.format == "normalized":
        out["type"] = kind
    for key, value in inst.items():
        if key == "type":
            continue
        if key in ATTRIBUTE_MEMBERS:
            if key in ("createdAt", "modifiedAt", "expiresAt") and not opts.sys_attrs:
                continue
            if key == "vocab":
                value = _compact_vocab(value, tm)
            elif key == "objectType":
                value = [tm.compact_type(t) for t in value]
                value = value[0] if len(value) == 1 else value
            elif key == "objectList" and opts.format == "normalized":
                value = [{"object": v} for v in value]
            out[key] = value
        elif isinstance(value, dict):
            out[tm.compact_attr(key)] = render_instance(value, tm, opts)
        else:  # an unknown scalar member: pass it through rather than fail the read
            out[key] = value
    if kind == "LanguageProperty" and opts.lang is not None:
        text, lang = _pick_language(inst.get("languageMap") or {}, opts.lang)
        out.pop("languageMap", None)
        if opts.format == "normalized":
            out["type"] = "Property"
        out["value"] = text
        out["lang"] = lang
    if opts.format == "concise":
        return _concise(out, kind)
    return out


def _concise(out: dict[str, Any], kind: str) -> Any:
    if kind in ("Property", "GeoProperty") and set(out) == {"value"}:
        return out["value"]
    if kind == "LanguageProperty" and "value" in out and "lang" in out:
        return out
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
