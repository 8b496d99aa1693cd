"""Version preference (GS CIM 009 v1.9.1 §4.3.6.8, ``Prefer: ngsi-ld=X.Y``): pure reformatting.

Layer: ngsild/, no I/O. A consumer may ask for the payload of an earlier API version; attribute
types introduced since then are reformatted as the type they extend (Table 4.3.6.8-1): a
VocabProperty, JsonProperty or ListProperty becomes a Property, a ListRelationship a
Relationship. The caller answers 203 when something was altered.
"""

from __future__ import annotations

import re
from typing import Any, Final

CURRENT: Final = (1, 9)
_VERSION = re.compile(r"(\d+)\.(\d+)")
# attribute type → (version it appeared in, type it falls back to, member holding its value)
_INTRODUCED: Final = {
    "VocabProperty": ((1, 8), "Property", "vocab"),
    "JsonProperty": ((1, 8), "Property", "json"),
    "ListProperty": ((1, 8), "Property", "valueList"),
    "ListRelationship": ((1, 8), "Relationship", "objectList"),
}


def preferred_version(prefer: str | None) -> tuple[int, int] | None:
    """The ``ngsi-ld=X.Y`` preference of a Prefer header, when it names a version we know.

    RFC 7240: preferences are a comma-separated list, each ``token[=value]`` followed by
    ``;``-parameters; the name is case-insensitive (RFC 9110 §5.6.2), the value a token or a
    quoted string.
    """
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "ngsi-ld":
            continue
        m = _VERSION.fullmatch(value.strip().strip('"'))
        if m is not None:
            version = (int(m.group(1)), int(m.group(2)))
            if (1, 0) <= version <= CURRENT:
                return version
    return None


def for_version(body: dict[str, Any], version: tuple[int, int]) -> tuple[dict[str, Any], bool]:
    """``body`` (a rendered entity) as the given version formats it; True if altered."""
    altered = False
    out: dict[str, Any] = {}
    for key, value in body.items():
        new = _attribute(value, version)
        altered = altered or new is not value
        out[key] = new
    return out, altered


def _attribute(value: Any, version: tuple[int, int]) -> Any:
    if isinstance(value, list):
        items = [_attribute(v, version) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if not isinstance(value, dict):
        return value
    for kind, (since, fallback, member) in _INTRODUCED.items():
        if version >= since or member not in value:
            continue
        if value.get("type", kind) != kind:
            continue
        inner = value[member]
        rest = {k: v for k, v in value.items() if k not in ("type", member)}
        if kind == "ListRelationship":
            objects = [i.get("object") if isinstance(i, dict) else i for i in inner]
            return {"type": fallback, "object": objects, **rest}
        if "type" not in value and not rest:
            return inner  # concise / simplified: the bare value
        return {"type": fallback, "value": inner, **rest}
    return value
