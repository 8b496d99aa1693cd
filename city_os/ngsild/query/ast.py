"""Typed ASTs of the NGSI-LD selection languages (pure, no I/O).

The parsers in this package (q.py: query language §4.9, geo.py: geoquery §4.10, scope.py:
scope query §4.19, type_selection.py: entity type selection §4.17) produce these frozen
dataclasses; the store turns them into SQL. Names are kept as the client wrote them (terms):
expansion against the @context happens when SQL is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

# --- q: values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number, kept as its validated source text (exact, any magnitude)."""

    text: str

    @property
    def value(self) -> Decimal:
        return Decimal(self.text)


@dataclass(frozen=True, slots=True)
class Text:
    """A quoted JSON string literal, unescaped."""

    value: str


@dataclass(frozen=True, slots=True)
class Boolean:
    value: bool


TemporalKind = Literal["dateTime", "date", "time"]


@dataclass(frozen=True, slots=True)
class Temporal:
    """A date, time or dateTime literal (§4.6.3), always UTC.

    ``text`` is as written; ``canonical`` is the normalised form compared in SQL:
    ``YYYY-MM-DDTHH:MM:SS.ffffff`` / ``YYYY-MM-DD`` / ``HH:MM:SS.ffffff``.
    """

    text: str
    kind: TemporalKind
    canonical: str


@dataclass(frozen=True, slots=True)
class Uri:
    """An unquoted URI (e.g. a Relationship object) or a bare term (``gender==Male``)."""

    value: str


Value = Number | Text | Boolean | Temporal | Uri


@dataclass(frozen=True, slots=True)
class Range:
    """``low..high``, both included; both ends have the same literal kind."""

    low: Value
    high: Value


@dataclass(frozen=True, slots=True)
class ValueList:
    """``v1,v2,...``: matches if any item matches."""

    items: tuple[Value, ...]


# --- q: attribute paths and terms ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkedPath:
    """``rel{[Type1,Type2:]path}``: follow Relationship ``rel`` to entities (of those types)."""

    types: tuple[str, ...]
    path: AttrPath


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute path.

    ``names[0]`` is the attribute, ``names[1:]`` sub-attributes (dot path, expanded);
    ``keys`` is the trailing ``[a.b]`` path into the JSON value (never expanded; ``*`` = any
    member, as in ``name[*]`` for any language); ``link`` follows a relationship (then
    ``names`` has exactly one element and ``keys`` is empty).
    """

    names: tuple[str, ...]
    keys: tuple[str, ...] = ()
    link: LinkedPath | None = None


CompOp = Literal["==", "!=", ">", ">=", "<", "<="]


@dataclass(frozen=True, slots=True)
class Comparison:
    path: AttrPath
    op: CompOp
    value: Value | Range | ValueList


@dataclass(frozen=True, slots=True)
class Pattern:
    """``~=`` (or ``!~=`` when ``negated``): a POSIX regular expression on string values."""

    path: AttrPath
    regex: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    """``attr`` (existence) or ``!attr`` (non-existence, when ``negated``)."""

    path: AttrPath
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[QExpr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[QExpr, ...]


QExpr = Comparison | Pattern | Exists | And | Or

# --- geoQ --------------------------------------------------------------------------------------

GeoRel = Literal["near", "within", "contains", "intersects", "disjoint", "equals", "overlaps"]
GeometryType = Literal[
    "Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"
]


@dataclass(frozen=True, slots=True)
class GeoQuery:
    """A validated geoquery. For ``near``, exactly one of the distances (metres) is set."""

    georel: GeoRel
    geometry: GeometryType
    coordinates: Any  # nested tuples of floats, as validated for the geometry type
    geoproperty: str = "location"
    max_distance: float | None = None
    min_distance: float | None = None

    def geojson(self) -> dict[str, Any]:
        """The reference geometry as a GeoJSON geometry object."""
        return {"type": self.geometry, "coordinates": _lists(self.coordinates)}


def _lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_lists(item) for item in value]
    return value


# --- scopeQ ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScopeMatch:
    """One scope pattern: ``levels`` (``+`` = any single level); ``descendants`` for ``/#``.

    ``/#`` alone is ``ScopeMatch((), True)``: any non-empty scope.
    """

    levels: tuple[str, ...]
    descendants: bool = False


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    terms: tuple[ScopeMatch, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    terms: tuple[ScopeMatch | ScopeAnd, ...]


ScopeExpr = ScopeMatch | ScopeAnd | ScopeOr

# --- type selection ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeName:
    name: str


@dataclass(frozen=True, slots=True)
class TypeAnd:
    """``(A;B)``: the entity has all of these types."""

    names: tuple[TypeName, ...]


@dataclass(frozen=True, slots=True)
class TypeOr:
    terms: tuple[TypeName | TypeAnd, ...]


TypeExpr = TypeName | TypeAnd | TypeOr
