"""The v2 Simple Query Language (``q``, ``mq``) and v2 geographical queries -> NGSI-LD (pure).

Layer: ngsiv2/. A v2 expression is rewritten into the NGSI-LD query language and parsed by
``ngsild.query.q``, so the core engine (SQL and in-memory evaluator) runs it unchanged:

- ``;`` is AND in both; unary ``attr`` / ``!attr`` are existence tests in both.
- ``==`` (also ``:``), ``!=``, ``<``, ``<=``, ``>``, ``>=``, ranges ``a..b``, lists ``a,b``.
- ``~=`` is a pattern; its regex is passed quoted.
- v2 literals: numbers, ``true``/``false``, ISO 8601 dates stay as they are; ``'quoted'`` and
  bare strings become JSON strings.
- v2 paths ``attr.key.key`` (into a compound value) become ``attr[key.key]``; mq paths
  ``attr.meta.key`` become ``attr.meta[key]``, ``TimeInstant`` being ``observedAt``.

``georel``/``geometry``/``coords`` (v2: ``lat,lon;lat,lon``, geometries point, line, polygon, box)
become an NGSI-LD ``GeoQuery``.
"""

from __future__ import annotations

import json
import re

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import GeoQuery, QExpr
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsiv2.ids import V2_ID_PREFIX

_OPERATORS = ("==", "!=", ">=", "<=", "~=", ">", "<", ":")
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$")
_NAME = re.compile(r"^[^\s.\[\]{}\"'=;()!<>~:,|]+$")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside single quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise BadRequestData(f"unterminated quoted string in {text!r}")
    parts.append("".join(current))
    return parts


def _literal(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise BadRequestData("empty value in q")
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return json.dumps(text[1:-1], ensure_ascii=False)
    if text in ("true", "false") or _NUMBER.match(text):
        return text
    if _DATE.match(text):
        # Orion compares dates as instants: a date is its midnight, a time without zone is UTC
        if "T" not in text:
            return text + "T00:00:00Z"
        return text if text.endswith("Z") or re.search(r"[+-]\d{2}:?\d{2}$", text) else text + "Z"
    return json.dumps(text, ensure_ascii=False)


def _operand(raw: str, op: str) -> str:
    if op in ("==", "!="):
        items = _split(raw, ",")
        if len(items) > 1:
            return ",".join(_literal(i) for i in items)
        if ".." in raw and "'" not in raw:
            low, _, high = raw.partition("..")
            return f"{_literal(low)}..{_literal(high)}"
    return _literal(raw)


def _name(text: str) -> str:
    if not _NAME.match(text):
        raise BadRequestData(f"invalid attribute name {text!r} in the query")
    return text


def _path(text: str, *, metadata: bool) -> str:
    parts = text.strip().split(".")
    if metadata:
        if len(parts) < 2:
            raise BadRequestData(f"mq: {text!r} must be attribute.metadata")
        attr, meta, keys = parts[0], parts[1], parts[2:]
        meta = "observedAt" if meta == "TimeInstant" else _name(meta)
        head = f"{_name(attr)}.{meta}"
    else:
        head, keys = _name(parts[0]), parts[1:]
    if keys:
        head += "[" + ".".join(_name(k) for k in keys) + "]"
    return head


def _term(text: str, *, metadata: bool) -> str:
    text = text.strip()
    if not text:
        raise BadRequestData("empty statement in the query")
    if text.startswith("!"):
        return "!" + _path(text[1:], metadata=metadata)
    quote = text.find("'")
    head = text if quote < 0 else text[:quote]
    found = [(head.find(op), op) for op in _OPERATORS if head.find(op) >= 0]
    if not found:
        return _path(text, metadata=metadata)
    pos = min(p for p, _ in found)
    op = next(o for p, o in sorted(found, key=lambda f: (f[0], -len(f[1]))) if p == pos)
    path, raw = _path(text[:pos], metadata=metadata), text[pos + len(op) :]
    if op == "~=":
        return f"{path}~={json.dumps(raw, ensure_ascii=False)}"
    op = "==" if op == ":" else op
    operand = _operand(raw, op)
    if op == "==" and path.startswith("ref") and operand.startswith('"') and "," not in raw:
        # a Relationship stores the NGSI-LD id of a v2 id: match either form
        target = json.loads(operand)
        if _NAME.match(target):
            operand += "," + (target if ":" in target else V2_ID_PREFIX + target)
    return f"{path}{op}{operand}"


def to_ngsild_q(q: str | None, mq: str | None) -> str | None:
    """The NGSI-LD ``q`` text of the v2 ``q`` and ``mq`` (both must hold)."""
    terms = [_term(t, metadata=False) for t in _split(q, ";")] if q is not None else []
    terms += [_term(t, metadata=True) for t in _split(mq, ";")] if mq is not None else []
    return ";".join(terms) if terms else None


def parse_v2_q(q: str | None, mq: str | None) -> QExpr | None:
    text = to_ngsild_q(q, mq)
    return parse_q(text) if text is not None else None


# ---------------------------------------------------------------------------------- geo

_GEOMETRIES = {"point": "Point", "line": "LineString", "polygon": "Polygon", "box": "Polygon"}


def _coords(text: str) -> list[list[float]]:
    out = []
    for pair in text.split(";"):
        lat, sep, lon = pair.partition(",")
        try:
            if not sep:
                raise ValueError(pair)
            out.append([float(lon), float(lat)])
        except ValueError:
            raise BadRequestData(f"coords: {pair!r} is not 'latitude,longitude'") from None
    return out


def parse_v2_geo(georel: str | None, geometry: str | None, coords: str | None) -> GeoQuery | None:
    given = [p for p in (georel, geometry, coords) if p is not None]
    if not given:
        return None
    if len(given) != 3:
        raise BadRequestData("georel, geometry and coords must be given together")
    assert georel is not None and geometry is not None and coords is not None
    kind = _GEOMETRIES.get(geometry)
    if kind is None:
        raise BadRequestData(f"geometry {geometry!r}: use point, line, polygon or box")
    points = _coords(coords)
    shape: object
    if geometry == "point":
        if len(points) != 1:
            raise BadRequestData("a point has exactly one coordinate pair")
        shape = points[0]
    elif geometry == "line":
        shape = points
    elif geometry == "box":
        if len(points) != 2:
            raise BadRequestData("a box has two coordinate pairs (opposite corners)")
        (x1, y1), (x2, y2) = points
        shape = [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]
    else:
        shape = [points]
    relation = georel.replace("coveredBy", "within")
    if relation.startswith("near"):
        relation = "near;" + ";".join(p.replace(":", "==", 1) for p in relation.split(";")[1:] if p)
    return parse_geoq(relation, kind, json.dumps(shape), "location")
