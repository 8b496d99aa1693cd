"""Pure NGSI-LD input checks: the member names, field checks (ids, names, datetimes, scopes,
types) and types that request parsing (``ngsild.attributes``) builds on.

Layer: ngsild/ (no I/O). Anything malformed raises ``BadRequestData`` naming the member, so a
write is refused whole before it reaches the store.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from city_os.errors import BadRequestData
from city_os.ngsild.limits import DEFAULT_LIMITS, Limits, check_count

Instance = dict[str, Any]
Attrs = dict[str, list[Instance]]

NULL_URI = "urn:ngsi-ld:null"

ATTRIBUTE_TYPES = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "VocabProperty",
        "JsonProperty",
        "ListProperty",
        "ListRelationship",
    }
)
# Which member carries the value of each attribute type.
VALUE_KEY = {
    "Property": "value",
    "GeoProperty": "value",
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "VocabProperty": "vocab",
    "JsonProperty": "json",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
# Members of an attribute that are not sub-attributes.
ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "objectType",
        "languageMap",
        "vocab",
        "json",
        "valueList",
        "objectList",
        "datasetId",
        "observedAt",
        "unitCode",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "lang",
        "expiresAt",
        "valueType",
        "entityIdSealed",
        "entityTypeSealed",
        "@context",
    }
)
PROOF_ATTRIBUTE = "ngsildproof"  # §4.5.x: a Data Integrity proof of the entity
# Members only the broker writes (notifications, proofs): never accepted as input (§4.5.2).
OUTPUT_ONLY_MEMBERS = frozenset(
    {
        "previousValue",
        "previousObject",
        "previousLanguageMap",
        "previousVocab",
        "previousJson",
        "previousValueList",
        "previousObjectList",
        "entityIdSealed",
        "entityTypeSealed",
    }
)
# Core members that cannot name an attribute of an entity (§4.5.1).
RESERVED_ATTRIBUTE_NAMES = frozenset(
    {
        "datasetId",
        "observedAt",
        "unitCode",
        "instanceId",
        "objectType",
        "lang",
        "valueType",
    }
)
UNIT_CODE_TYPES = frozenset({"Property", "ListProperty", "GeoProperty"})
SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "deletedAt", "instanceId"})
# Entity members that are not attributes.
ENTITY_MEMBERS = frozenset(
    {"id", "@id", "type", "@type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt"}
)
GEO_ATTRIBUTE_NAMES = frozenset({"location", "observationSpace", "operationSpace"})

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s\x00-\x1f\x7f<>\"{}|\\^`]+$")
_FORBIDDEN_NAME = re.compile(r"[\s<>\"'=;()\x00-\x1f]")
_TERM = re.compile(r"^[^\W\d]\w*$")
# Code points that render invisibly or confusably; never part of an identifier (§4.5.1, RFC 3987).
_INVISIBLE = (
    frozenset({0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x034F, 0x180E})
    | frozenset(range(0xFE00, 0xFE10))
    | frozenset(range(0xE0100, 0xE01F0))
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_MAX_OFFSET = timedelta(hours=15, minutes=59)
MAX_NAME_CHARS = 2048
_SCOPE = re.compile(r"^/[^\s/#+]+(/[^\s/#+]+)*$")


class TermExpander(Protocol):
    def expand_attr(self, term: str) -> str | None: ...
    def expand_type(self, term: str) -> str: ...
    def expand_vocab_value(self, value: str) -> str: ...


@dataclass
class ParsedEntity:
    id: str
    types: list[str]
    attrs: Attrs = field(default_factory=dict)
    scopes: list[str] | None = None
    expires_at: str | None = None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def is_uri(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) < 2048
        and _URI.match(value) is not None
        and (value.isascii() or not any(_bad_code_point(c) for c in value if ord(c) > 0x7E))
    )


def _bad_code_point(char: str) -> bool:
    code = ord(char)
    if code in _INVISIBLE or (0xFDD0 <= code <= 0xFDEF) or (code & 0xFFFE) == 0xFFFE:
        return True
    return unicodedata.category(char) in ("Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp")


def check_entity_id(value: object, what: str = "entity id") -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{what} must be a non-empty string (a URI)")
    if not is_uri(value):
        raise BadRequestData(f"{what} {value!r} is not a valid URI")
    if value == NULL_URI:
        raise BadRequestData(f"{what} cannot be the NGSI-LD Null {NULL_URI}")
    return value


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise BadRequestData(f"{what} must be a non-empty string")
    problem = _name_problem(name)
    if problem:
        raise BadRequestData(f"{what} {name!r} {problem}")
    return name


@functools.lru_cache(maxsize=8192)
def _name_problem(name: str) -> str:
    """Why a name is invalid ("" when it is fine); cached, as names repeat in every payload."""
    if len(name) > MAX_NAME_CHARS:  # before any scan; the bytes limit applies to its IRI
        return f"is longer than {MAX_NAME_CHARS} characters"
    if _FORBIDDEN_NAME.search(name):
        return "contains forbidden characters"
    if ":" not in name and not _TERM.match(name):
        return (
            "is invalid: a name starts with a letter and holds only letters, digits and "
            "underscores (or is a full IRI)"
        )
    if ":" in name and not is_uri(name):
        return "is not a valid IRI or compact IRI"
    return ""


def check_datetime(value: object, what: str) -> str:
    """An ISO 8601 date-time both Python and PostgreSQL can hold: a UTC offset within ±15:59
    (PostgreSQL's bound; Python takes up to ±23:59) and a year from 1 to 9999 once in UTC
    (9999-12-31T23:00-10:00 is year 10000 in UTC, which no Python datetime can read back)."""
    if not isinstance(value, str) or not _DATETIME.match(value):
        raise BadRequestData(f"{what} must be an ISO 8601 date-time, got {value!r:.80}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        offset = parsed.utcoffset()
        if offset is not None:
            if abs(offset) > _MAX_OFFSET:
                raise ValueError("its UTC offset is beyond ±15:59")
            parsed.astimezone(UTC)  # OverflowError outside years 1-9999 in UTC
    except (ValueError, OverflowError) as exc:
        raise BadRequestData(f"{what} is not a valid date-time: {value!r} ({exc})") from None
    return value


def parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def expand_type_name(tm: TermExpander, name: object) -> str:
    iri = tm.expand_type(check_name(name, "entity type"))
    if iri.startswith("@") or ":" not in iri:
        raise BadRequestData(f"entity type {name!r} does not expand to an IRI")
    return iri


def parse_types(tm: TermExpander, raw: object, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    names = raw if isinstance(raw, list) else [raw]
    if not names:
        raise BadRequestData("entity type must not be empty")
    check_count(limits, "entity_types", len(names), "entity types")  # before expanding any
    return list(dict.fromkeys(expand_type_name(tm, name) for name in names))


def parse_scopes(raw: object) -> list[str]:
    scopes = raw if isinstance(raw, list) else [raw]
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise BadRequestData(f"scope {scope!r} must look like /a/b (no '#', '+' or spaces)")
    return list(dict.fromkeys(scopes))


def expand_attr_name(tm: TermExpander, name: str) -> str:
    check_name(name, "attribute name")
    iri = tm.expand_attr(name)
    if iri is None or iri.startswith("@"):
        raise BadRequestData(f"attribute name {name!r} cannot be expanded with the @context")
    return iri
