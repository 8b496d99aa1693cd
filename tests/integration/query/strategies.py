"""Hypothesis strategies: NGSI-LD entities (the JSON a client sends) and the selections of the
query languages, written as text and parsed by the real parsers.

Small pools of names and values make terms hit: every attribute kind (Property with scalars,
lists, objects and DateTime values; Relationship; LanguageProperty; VocabProperty; JsonProperty;
ListProperty; ListRelationship; GeoProperty), sub-attributes, observedAt, datasetIds. Date-time
text comes with and without ``Z``, with UTC offsets, as dates and as times. Geometries lie on a
0.01° grid around Saga and reference geometries on the grid shifted by 0.005°, so no stored
vertex lies on a reference edge (or the reverse) unless a reference is a stored geometry itself.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from city_os.errors import BadRequestData
from city_os.ngsild.entity import check_datetime

# Examples per test: a few seconds in `make test`; CITYOS_PROPERTY_PROFILE=long for a longer hunt.
_LONG = os.environ.get("CITYOS_PROPERTY_PROFILE") == "long"
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
PROFILE = settings(max_examples=400 if _LONG else 30, deadline=None, suppress_health_check=_QUIET)
TEXT_PROFILE = settings(max_examples=4000 if _LONG else 200, deadline=None)

IDS = [f"urn:ngsi-ld:Thing:{c}" for c in "abcdefgh"]
TYPES = ["Shelter", "Station", "District"]
SCOPES = ["/Saga", "/Saga/Shelters", "/Saga/Shelters/North", "/Saga/Parks", "/Other"]
ATTRS = ["p1", "p2", "p3"]
VOCAB = ["School", "Park"]
VOCAB_IRIS = [f"https://uri.etsi.org/ngsi-ld/default-context/{v}" for v in VOCAB]
DATETIMES = [
    "2024-06-01T00:00:00Z",
    "2024-06-01T09:00:00+09:00",
    "2024-05-31T23:30:00.5Z",
    "2024-06-01T00:00:00.250Z",
    "2024-06-01T08:59:59+09",
    "2024-06-01 00:00:00",
    "2024-06-01T00:00:00",
    "2024-06-01",
    "2024-06-02",
    "10:00:00Z",
    "10:00:00.5Z",
    "19:00:00+09:00",
    "10:00:00",
]
STRINGS = ["a", "b", "Saga", "saga station", "避難所", "A-1", "", "x\ny", *DATETIMES]
NUMBERS = [-3, -1, 0, 1, 2, 3, 0.5, 1.5, -2.25, 2.0, 10**18, 0.1]
_scalar = st.one_of(
    st.sampled_from(NUMBERS), st.sampled_from(STRINGS), st.booleans(), st.integers(-3, 3)
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["k", "m", "en"]), inner, min_size=1, max_size=2)
    ),
    max_leaves=4,
)


# A DateTime value's @value is checked by the entity parser; plain strings are not.
def _checked(text: str) -> bool:
    try:
        check_datetime(text, "@value")
    except BadRequestData:
        return False
    return True


_AT_VALUES = [*(d for d in DATETIMES if _checked(d)), "2024-06-01T09:00+09:00"]
_date_time_value = st.sampled_from(_AT_VALUES).map(lambda v: {"@type": "DateTime", "@value": v})
_observed = st.sampled_from(
    ["2024-06-01T00:00:00Z", "2024-06-01T10:00:00.5Z", "2023-01-01T00:00:00Z"]
)


def _property() -> st.SearchStrategy[dict[str, Any]]:
    subs = st.fixed_dictionaries(
        {},
        optional={
            "sub": st.builds(lambda v: {"type": "Property", "value": v}, _scalar),
            "observedAt": _observed,
            "unitCode": st.sampled_from(["CEL", "MTR"]),
        },
    )
    value = st.one_of(_value, _date_time_value)
    return st.builds(lambda v, extra: {"type": "Property", "value": v, **extra}, value, subs)


def _relationship() -> st.SearchStrategy[dict[str, Any]]:
    target = st.sampled_from([*IDS, "urn:ngsi-ld:Thing:missing"])
    obj = target | st.lists(target, min_size=1, max_size=2)
    return st.builds(lambda o: {"type": "Relationship", "object": o}, obj)


_texts = st.sampled_from(["a", "Saga", "避難所", "school"])
_language = st.builds(
    lambda m: {"type": "LanguageProperty", "languageMap": m},
    st.dictionaries(
        st.sampled_from(["en", "ja"]), _texts | st.lists(_texts, min_size=1, max_size=2), min_size=1
    ),
)
_vocab = st.builds(
    lambda v: {"type": "VocabProperty", "vocab": v},
    st.sampled_from(VOCAB) | st.lists(st.sampled_from(VOCAB), min_size=1, max_size=2),
)
_json = st.builds(
    lambda v: {"type": "JsonProperty", "json": v},
    st.dictionaries(st.sampled_from(["k", "m"]), _value | st.none(), min_size=1),
)
_list = st.builds(lambda v: {"type": "ListProperty", "valueList": v}, st.lists(_value, max_size=3))
_list_rel = st.builds(
    lambda v: {"type": "ListRelationship", "objectList": v},
    st.lists(st.sampled_from(IDS), min_size=1, max_size=2),
)
INSTANCE = st.one_of(
    _property(), _property(), _relationship(), _language, _vocab, _json, _list, _list_rel
)


def _grid(lon: int, lat: int) -> list[float]:
    return [round(130.25 + lon * 0.01, 3), round(33.22 + lat * 0.01, 3)]


def polygon(x: int, y: int, w: int, h: int, shift: float = 0.0) -> dict[str, Any]:
    x0, y0 = _grid(x, y)
    x1, y1 = _grid(x + w, y + h)
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    ring = [[round(a + shift, 4), round(b + shift, 4)] for a, b in ring]
    return {"type": "Polygon", "coordinates": [ring]}


_cell = st.integers(0, 12)
_size = st.integers(1, 4)
GEOMETRY = st.one_of(
    st.builds(lambda x, y: {"type": "Point", "coordinates": _grid(x, y)}, _cell, _cell),
    st.builds(lambda x, y: {"type": "Point", "coordinates": _grid(x, y)}, _cell, _cell),
    st.builds(
        lambda a, b: {"type": "LineString", "coordinates": [_grid(*a), _grid(*b)]},
        st.tuples(_cell, _cell),
        st.tuples(_cell, _cell),
    ).filter(lambda g: g["coordinates"][0] != g["coordinates"][1]),
    st.builds(polygon, _cell, _cell, _size, _size),
    st.builds(polygon, _cell, _cell, _size, _size),
    st.builds(
        lambda ps: {"type": "MultiPoint", "coordinates": [_grid(*p) for p in ps]},
        st.lists(st.tuples(_cell, _cell), min_size=1, max_size=3),
    ),
)
_geo_instance = st.builds(lambda g: {"type": "GeoProperty", "value": g}, GEOMETRY)


def _attribute(instance: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """One instance, or several with distinct datasetIds (the first sometimes the default)."""
    several = st.lists(instance, min_size=2, max_size=3).map(
        lambda xs: [
            {**x, "datasetId": f"urn:ngsi-ld:Dataset:{i}"} if i else x for i, x in enumerate(xs)
        ]
    )
    return instance | several


@st.composite
def entity(draw: st.DrawFn, entity_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": entity_id}
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    body["type"] = types[0] if len(types) == 1 else types
    scopes = draw(st.lists(st.sampled_from(SCOPES), max_size=2, unique=True))
    if scopes:
        body["scope"] = scopes
    for name in draw(st.lists(st.sampled_from(ATTRS), min_size=1, max_size=3, unique=True)):
        body[name] = draw(_attribute(INSTANCE))
    if draw(st.booleans()):
        body["rel"] = draw(_attribute(_relationship()))
    for name in draw(st.lists(st.sampled_from(["location", "area"]), max_size=2, unique=True)):
        body[name] = draw(_attribute(_geo_instance))
    expiry = draw(
        st.sampled_from([None, None, None, "2000-01-01T00:00:00Z", "2999-01-01T00:00:00Z"])
    )
    if expiry:
        body["expiresAt"] = expiry
    return body


ENTITIES = st.lists(st.sampled_from(IDS), min_size=1, max_size=len(IDS), unique=True).flatmap(
    lambda ids: st.tuples(*(entity(i) for i in ids))
)

# --- q -------------------------------------------------------------------------------------------

_q_number = st.sampled_from(
    [
        *("0", "1", "2", "-1", "1.5", "2.0", "-2.25", "1e0", "0.1", "100000000000000000000"),
        "0.1000000000000000055511151231257827",  # no float's shortest form: compared exactly
        "1.0000000000000001",
    ]
)
_q_string = st.sampled_from(['"a"', '"Saga"', '"避難所"', '"b"', '"2024-06-01"', '"A-1"', '"CEL"'])
_q_temporal = st.sampled_from(
    [
        "2024-06-01T00:00:00Z",
        "2024-06-01T00:00:00.25Z",
        "2024-05-31T23:30:00.5Z",
        "2024-06-01T00:00:00.000",
        "2024-06-01",
        "10:00:00Z",
        "10:00:00.5",
    ]
)
_q_uri = st.sampled_from([*IDS, *VOCAB_IRIS, "School", "urn:ngsi-ld:Dataset:1"])
_q_scalar = st.one_of(_q_number, _q_string, _q_temporal, _q_uri, st.sampled_from(["true", "false"]))
_ordered = st.one_of(_q_number, _q_string, _q_temporal)
_range = st.one_of(
    st.tuples(_q_number, _q_number),
    st.tuples(_q_string, _q_string),
    st.sampled_from(
        [
            ("2024-05-31T00:00:00Z", "2024-06-01T00:00:00Z"),
            ("2024-06-01", "2024-06-02"),
            ("09:00:00Z", "11:00:00Z"),
        ]
    ),
).map(lambda r: f"{r[0]}..{r[1]}")
_list_values = st.lists(_q_scalar, min_size=2, max_size=3).map(",".join)
PATTERNS = [
    "^a",
    "a$",
    "Saga",
    "(?i)^saga",
    "避難",
    r"^\w+$",
    r"\d",
    "^$",
    "x.y",
    r"[[:upper:]]",
    "2024-06",
    "^(a|b)",
]
_regex = st.sampled_from(PATTERNS).map(lambda p: json.dumps(p, ensure_ascii=False))


@st.composite
def _path(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from([*ATTRS, "rel"]))
    suffix = draw(
        st.sampled_from(
            [
                "",
                "",
                "",
                ".sub",
                ".observedAt",
                ".datasetId",
                ".unitCode",
                "[k]",
                "[k.m]",
                "[*]",
                "[en]",
                "[ja]",
                ".sub[k]",
            ]
        )
    )
    return name + suffix


@st.composite
def _term(draw: st.DrawFn, depth: int = 0) -> str:
    if depth == 0 and draw(st.integers(0, 6)) == 0:
        types = draw(st.sampled_from(["", "District:", "Shelter,Station:"]))
        inner = draw(_term(depth + 1))
        if inner.startswith("!"):
            return f"!rel{{{types}{inner[1:]}}}"
        return _link(inner, types)
    path = draw(_path())
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return path
    if kind == 1:
        return "!" + path
    if kind == 2:
        return f"{path}{draw(st.sampled_from(['~=', '!~=']))}{draw(_regex)}"
    op = draw(st.sampled_from(["==", "!=", ">", ">=", "<", "<="]))
    if op in ("==", "!="):
        value = draw(st.one_of(_q_scalar, _range, _list_values))
    else:
        value = draw(_ordered)
    return f"{path}{op}{value}"


def _link(inner: str, types: str) -> str:
    """``rel{[types]inner}``: the braces close after the path, before the operator."""
    for i, c in enumerate(inner):
        if c in "=!<>~":
            return f"rel{{{types}{inner[:i]}}}{inner[i:]}"
    return f"rel{{{types}{inner}}}"


@st.composite
def q_text(draw: st.DrawFn) -> str:
    terms = draw(st.lists(_term(), min_size=1, max_size=3))
    glue = draw(
        st.lists(st.sampled_from([";", "|"]), min_size=len(terms) - 1, max_size=len(terms) - 1)
    )
    text = terms[0]
    for sep, term in zip(glue, terms[1:], strict=True):
        text = f"({text}){sep}{term}" if draw(st.booleans()) else f"{text}{sep}{term}"
    return text


# --- geoQ, scopeQ, types -------------------------------------------------------------------------

_shifted = st.builds(lambda x, y: [round(a + 0.005, 4) for a in _grid(x, y)], _cell, _cell)
REFERENCE = st.one_of(
    st.builds(lambda p: ("Point", p), _shifted),
    st.builds(
        lambda x, y, w, h: ("Polygon", polygon(x, y, w, h, 0.005)["coordinates"]),
        _cell,
        _cell,
        _size,
        _size,
    ),
    st.builds(lambda a, b: ("LineString", [a, b]), _shifted, _shifted).filter(
        lambda r: r[1][0] != r[1][1]
    ),
)
GEOREL = st.one_of(
    st.sampled_from(["within", "contains", "intersects", "disjoint", "equals", "overlaps"]),
    st.sampled_from([300, 1500, 4000, 9000]).map(lambda d: f"near;maxDistance=={d}"),
    st.sampled_from([300, 1500, 4000, 9000]).map(lambda d: f"near;minDistance=={d}"),
)
SCOPEQ = st.sampled_from(
    [
        "/Saga",
        "/Saga/#",
        "/#",
        "/+/Shelters",
        "/Saga/+/North",
        "/Saga/+/#",
        "/Other|/Saga/Parks",
        "(/Saga/#;/Other)",
        "/Saga/Shelters/North/#",
    ]
)
TYPEQ = st.sampled_from(
    ["Shelter", "Shelter,Station", "(Shelter;Station)", "(Shelter;District)|Station", "Nothing"]
)
ID_PATTERNS = st.sampled_from(
    [
        "^urn:ngsi-ld:Thing:[a-c]",
        "Thing:[ab]",
        "(?i)THING:E",
        "d$|f$",
        r"^urn:ngsi-ld:Thing:\w$",
        "g",
    ]
)
