"""The optimized renderer and ``_iso`` must give exactly the output of the straightforward code.

``_reference_render`` / ``_reference_instance`` / ``_reference_iso`` are the implementations the
fast paths replaced, kept here only as an oracle. When an output is meant to change, change the
reference too. Outputs are compared as JSON text, so key order counts.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from city_os.core.contexts import bundled_documents
from city_os.ngsild.entity import ATTRIBUTE_MEMBERS, Instance
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.representation import (
    EntityRecord,
    Format,
    RenderOptions,
    TermCompactor,
    _compact_vocab,
    _pick_language,
    _simple_value,
    instance_alive,
    render,
    render_instance,
)
from city_os.store.postgres.entities import _iso

# --- the reference implementation (before the fast paths) -----------------------------------


def _reference_render(
    record: EntityRecord, tm: TermCompactor, opts: RenderOptions
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if _ref_keep("id", opts):
        out["id"] = record.id
    if _ref_keep("type", opts):
        types = [tm.compact_type(t) for t in record.types]
        out["type"] = types[0] if len(types) == 1 else types
    if record.scopes and _ref_keep("scope", opts):
        out["scope"] = record.scopes[0] if len(record.scopes) == 1 else list(record.scopes)
    now: str | None = None
    for iri, instances in record.attrs.items():
        if not _ref_keep_attr(iri, opts):
            continue
        if any("expiresAt" in inst for inst in instances):
            now = now or datetime.now(UTC).isoformat().replace("+00:00", "Z")
            instances = [i for i in instances if _ref_alive(i, now)]
            if not instances:
                continue
        name = tm.compact_attr(iri)
        if opts.format == "keyValues" and any("datasetId" in i for i in instances):
            out[name] = {
                "dataset": {
                    i.get("datasetId", "@none"): _reference_instance(i, tm, opts) for i in instances
                }
            }
            continue
        rendered = [_reference_instance(inst, tm, opts) for inst in instances]
        out[name] = rendered[0] if len(rendered) == 1 else rendered
    if record.expires_at and opts.sys_attrs and _ref_keep("expiresAt", opts):
        out["expiresAt"] = record.expires_at
    if opts.sys_attrs and opts.format != "keyValues":
        out["createdAt"] = record.created_at
        out["modifiedAt"] = record.modified_at
    return out


def _ref_alive(inst: Instance, now: str) -> bool:
    # The expiry reading itself did not change; only ``now`` became a datetime.
    return instance_alive(inst, datetime.fromisoformat(now.replace("Z", "+00:00")))


def _ref_keep(member: str, opts: RenderOptions) -> bool:
    if opts.pick is not None and member not in opts.pick:
        return False
    return not (opts.omit is not None and member in opts.omit)


def _ref_keep_attr(iri: str, opts: RenderOptions) -> bool:
    if opts.attrs is not None and iri not in opts.attrs:
        return False
    return _ref_keep(iri, opts)


def _reference_instance(inst: Instance, tm: TermCompactor, opts: RenderOptions) -> Any:
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
            out[tm.compact_attr(key)] = _reference_instance(value, tm, opts)
        else:
            out[key] = value
    if kind == "LanguageProperty" and opts.lang is not None:
        text, lang = _pick_language(inst.get("languageMap") or {}, opts.lang)
        out.pop("languageMap", None)
        if opts.format == "normalized":
            out["type"] = "Property"
        out["value"] = text
        out["lang"] = lang
    if opts.format == "concise":
        if kind in ("Property", "GeoProperty") and set(out) == {"value"}:
            return out["value"]
    return out


def _reference_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    spec = "microseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


# --- stored entities covering every attribute type and member ------------------------------

EX = "http://example.org/"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
T0 = "2026-11-26T10:00:00Z"
T1 = "2026-11-26T10:00:00.123456Z"
PAST = "2001-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"
SYS = {"createdAt": T0, "modifiedAt": T1}

CONTEXT: list[Any] = [
    {
        "Sensor": EX + "Sensor",
        "Device": EX + "Device",
        "temperature": EX + "temperature",
        "accuracy": EX + "accuracy",
        "category": EX + "category",
        "commercial": EX + "commercial",
        "refDevice": {"@id": EX + "refDevice", "@type": "@id"},
    },
    CORE_CONTEXT_URL,
]


def _prop(value: Any, **extra: Any) -> Instance:
    return {"type": "Property", "value": value, **extra}


ATTRS: dict[str, list[Instance]] = {
    EX + "temperature": [
        _prop(
            21.5,
            unitCode="CEL",
            observedAt=T1,
            **SYS,
            **{EX + "accuracy": {"type": "Property", "value": 0.1, **SYS}},
        ),
        _prop(22.0, datasetId="urn:ngsi-ld:Dataset:2", **SYS),
    ],
    DEFAULT + "status": [_prop("ok", **SYS)],
    DEFAULT + "bare": [{"value": 3}],  # no "type": a Property
    DEFAULT + "onlyValue": [_prop({"@type": "DateTime", "@value": T0})],
    DEFAULT + "nested": [
        _prop(
            {"a": [1, 2]},
            **{
                DEFAULT + "level1": {
                    "type": "Relationship",
                    "object": "urn:x:1",
                    DEFAULT + "level2": {"type": "Property", "value": True, **SYS},
                    **SYS,
                }
            },
        )
    ],
    NGSI_LD + "location": [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.35, 48.85]}, **SYS},
        {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [0, 0]},
            "datasetId": "urn:ngsi-ld:Dataset:gps",
        },
    ],
    EX + "refDevice": [
        {
            "type": "Relationship",
            "object": "urn:ngsi-ld:Device:1",
            "objectType": [EX + "Device"],
            **SYS,
        }
    ],
    DEFAULT + "owners": [
        {
            "type": "Relationship",
            "object": ["urn:ngsi-ld:P:1", "urn:ngsi-ld:P:2"],
            "objectType": [EX + "Device", DEFAULT + "Person"],
        }
    ],
    DEFAULT + "name": [
        {"type": "LanguageProperty", "languageMap": {"en": "Bridge", "fr": "Pont"}, **SYS},
        {
            "type": "LanguageProperty",
            "languageMap": {"@none": "Brug", "nl-BE": "Brug"},
            "datasetId": "urn:ngsi-ld:Dataset:nl",
        },
    ],
    DEFAULT + "emptyLang": [{"type": "LanguageProperty", "languageMap": {}}],
    EX + "category": [{"type": "VocabProperty", "vocab": EX + "commercial", **SYS}],
    DEFAULT + "tags": [{"type": "VocabProperty", "vocab": [EX + "commercial", DEFAULT + "b"]}],
    DEFAULT + "config": [{"type": "JsonProperty", "json": {"@type": "x", "k": [1, None]}, **SYS}],
    DEFAULT + "readings": [
        {"type": "ListProperty", "valueList": [1, 2, {"@value": 3}], "observedAt": T0, **SYS}
    ],
    DEFAULT + "route": [
        {"type": "ListRelationship", "objectList": ["urn:x:a", "urn:x:b"], **SYS},
        {"type": "ListRelationship", "objectList": [], "datasetId": "urn:ngsi-ld:Dataset:2"},
    ],
    DEFAULT + "odd": [_prop(1, instanceId="urn:i:1", unknownScalar=7, **SYS)],
    DEFAULT + "transient": [
        _prop("gone", expiresAt=PAST, **SYS),
        _prop("kept", expiresAt=FUTURE, datasetId="urn:ngsi-ld:Dataset:2", **SYS),
        _prop("naive past", expiresAt="2001-01-01T00:00:00", datasetId="urn:d:3"),
        _prop("unparsable", expiresAt="soon", datasetId="urn:d:4"),
        _prop("not a string", expiresAt=5, datasetId="urn:d:5"),
    ],
    DEFAULT + "allExpired": [_prop(1, expiresAt=PAST), _prop(2, expiresAt="2001-01-01")],
    DEFAULT + "futureOnly": [_prop(1, expiresAt=FUTURE, **SYS)],
    DEFAULT + "emptyList": [],
}


def _entity(**changes: Any) -> EntityRecord:
    fields: dict[str, Any] = {
        "id": "urn:ngsi-ld:Sensor:1",
        "types": [EX + "Sensor"],
        "attrs": ATTRS,
        "scopes": ["/a/b"],
        "created_at": T0,
        "modified_at": T1,
        "expires_at": None,
    }
    fields.update(changes)
    return EntityRecord(**fields)


RECORDS = {
    "everything": _entity(),
    "two-types-two-scopes-transient": _entity(
        types=[EX + "Sensor", DEFAULT + "Thing"], scopes=["/a", "/b/c"], expires_at=FUTURE
    ),
    "no-attrs-no-scope": _entity(attrs={}, scopes=None),
    "empty-scopes": _entity(scopes=[], attrs={DEFAULT + "status": ATTRS[DEFAULT + "status"]}),
}

ALL_ATTRS = frozenset(ATTRS)
PROJECTIONS: dict[str, dict[str, frozenset[str] | None]] = {
    "none": {},
    "attrs": {"attrs": frozenset({EX + "temperature", DEFAULT + "name", DEFAULT + "nope"})},
    "attrs-empty": {"attrs": frozenset()},
    "pick": {"pick": frozenset({"id", EX + "category", DEFAULT + "transient", "expiresAt"})},
    "pick-type-scope": {"pick": frozenset({"type", "scope", DEFAULT + "route"})},
    "omit": {"omit": frozenset({"id", "scope", "expiresAt", NGSI_LD + "location"})},
    "all-three": {
        "attrs": ALL_ATTRS - {DEFAULT + "odd"},
        "pick": frozenset({"id", "type", *ALL_ATTRS}),
        "omit": frozenset({EX + "refDevice", "type"}),
    },
}
FORMATS: tuple[Format, ...] = ("normalized", "concise", "keyValues")
LANGS = (None, "fr", "nl;q=0.5, de", "*")


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return TermMap(CONTEXT, bundled_documents())


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("record_name", list(RECORDS))
@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_render_equals_reference(record_name: str, projection: str, tm: TermMap) -> None:
    record = RECORDS[record_name]
    for fmt, sys_attrs, lang in itertools.product(FORMATS, (False, True), LANGS):
        opts = RenderOptions(
            format=fmt,
            sys_attrs=sys_attrs,
            lang=lang,
            attrs=PROJECTIONS[projection].get("attrs"),
            pick=PROJECTIONS[projection].get("pick"),
            omit=PROJECTIONS[projection].get("omit"),
        )
        assert _json(render(record, tm, opts)) == _json(_reference_render(record, tm, opts)), opts


def test_render_instance_equals_reference(tm: TermMap) -> None:
    for instances in ATTRS.values():
        for inst in instances:
            for fmt, sys_attrs, lang in itertools.product(FORMATS, (False, True), LANGS):
                opts = RenderOptions(format=fmt, sys_attrs=sys_attrs, lang=lang)
                expected = _reference_instance(inst, tm, opts)
                assert _json(render_instance(inst, tm, opts)) == _json(expected), (inst, opts)


def test_render_does_not_touch_the_stored_entity(tm: TermMap) -> None:
    before = _json(ATTRS)
    for fmt in FORMATS:
        render(RECORDS["everything"], tm, RenderOptions(format=fmt, lang="fr"))
    assert _json(ATTRS) == before


def test_known_outputs(tm: TermMap) -> None:
    """A few outputs spelled out, so the reference itself is checked too."""
    record = _entity(
        attrs={
            EX + "temperature": ATTRS[EX + "temperature"][:1],
            EX + "category": ATTRS[EX + "category"],
            DEFAULT + "route": ATTRS[DEFAULT + "route"][:1],
            DEFAULT + "transient": ATTRS[DEFAULT + "transient"][:2],
        },
        scopes=None,
    )
    assert render(record, tm, RenderOptions()) == {
        "id": "urn:ngsi-ld:Sensor:1",
        "type": "Sensor",
        "temperature": {
            "type": "Property",
            "value": 21.5,
            "unitCode": "CEL",
            "observedAt": T1,
            "accuracy": {"type": "Property", "value": 0.1},
        },
        "category": {"type": "VocabProperty", "vocab": "commercial"},
        "route": {
            "type": "ListRelationship",
            "objectList": [{"object": "urn:x:a"}, {"object": "urn:x:b"}],
        },
        "transient": {
            "type": "Property",
            "value": "kept",
            "datasetId": "urn:ngsi-ld:Dataset:2",
        },
    }
    concise = render(record, tm, RenderOptions(format="concise", sys_attrs=True))
    assert list(concise) == [
        "id",
        "type",
        "temperature",
        "category",
        "route",
        "transient",
        "createdAt",
        "modifiedAt",
    ]
    assert concise["temperature"]["accuracy"] == {"value": 0.1, **SYS}
    assert concise["route"]["objectList"] == ["urn:x:a", "urn:x:b"]
    assert render(record, tm, RenderOptions(format="keyValues")) == {
        "id": "urn:ngsi-ld:Sensor:1",
        "type": "Sensor",
        "temperature": 21.5,
        "category": {"vocab": "commercial"},
        "route": ["urn:x:a", "urn:x:b"],
        "transient": {"dataset": {"urn:ngsi-ld:Dataset:2": "kept"}},
    }


# --- _iso ---------------------------------------------------------------------------------

_AWARE = [
    datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 26, 10, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
    datetime(999, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
    datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=746_745_600_000_123),
    datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone(timedelta(0))),
    datetime(2026, 11, 26, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone(timedelta(seconds=30))),
    datetime(2026, 11, 26, 10, 0, 0, 7, tzinfo=ZoneInfo("UTC")),
    datetime(2026, 7, 1, 10, 0, 0, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 11, 26, 10, 0, 0),  # naive
    datetime(2026, 11, 26, 10, 0, 0, 42),  # naive
]


@pytest.mark.parametrize("value", [None, *_AWARE], ids=str)
def test_iso_equals_reference(value: datetime | None) -> None:
    assert _iso(value) == _reference_iso(value)


def test_iso_formats() -> None:
    assert _iso(datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)) == "2026-11-26T10:00:00Z"
    assert _iso(datetime(2026, 11, 26, 10, 0, 0, 50, tzinfo=UTC)) == "2026-11-26T10:00:00.000050Z"
    assert _iso(datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-11-26T10:00:00+02:00"
    )
