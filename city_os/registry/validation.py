"""Schema registry, pure validation core: JSON Schemas for the key-values form of entities.

No I/O beyond reading the bundled ``schemas/`` folder on request, and never the network: every
``$ref`` resolves from a ``referencing.Registry`` built from ``schemas/common/`` and its
``ref-map.json`` (remote URL → local file), so a ``$ref`` to an unknown remote URL is a
registration-time error (:func:`check_schema`), not a fetch. Validation reports every violation
with the JSON pointer of its instance location, sorted, so the API layer can answer one
BadRequestData listing them all.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema_rs
import referencing.exceptions
from jsonschema import (
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
    FormatChecker,
)
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource, Specification
from referencing.jsonschema import DRAFT7, DRAFT201909, DRAFT202012

from city_os.errors import BadRequestData
from city_os.registry import patterns

__all__ = [
    "DEFAULT_SCHEMAS_DIR",
    "BundledModel",
    "SchemaValidator",
    "ValidatorCache",
    "Violation",
    "check_schema",
    "common_registry",
    "format_checker",
    "load_bundled",
]

# The repository's bundled models; the API layer may pass another folder (a Settings value).
DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

Schema = dict[str, Any]


def _linear(cls: type[Validator]) -> type[Validator]:
    """The dialect's validator with its regular expressions on RE2 (registry.patterns)."""
    extended: type[Validator] = extend(cls, validators=patterns.KEYWORDS)
    return extended


# Dialects a data steward may declare in "$schema" (with or without the empty fragment).
_DIALECTS: dict[str, tuple[type[Validator], Specification[Any]]] = {
    "http://json-schema.org/draft-07/schema": (_linear(Draft7Validator), DRAFT7),
    "https://json-schema.org/draft/2019-09/schema": (_linear(Draft201909Validator), DRAFT201909),
    "https://json-schema.org/draft/2020-12/schema": (_linear(Draft202012Validator), DRAFT202012),
}
_REF_KEYWORDS = ("$ref", "$dynamicRef")


class Violation(NamedTuple):
    """One reason a document does not match its schema.

    ``pointer`` is the RFC 6901 pointer of the instance location (``""`` is the document itself);
    for ``required`` it names the missing member (``/name``), which is what a data steward needs.
    ``keyword`` is the failing schema keyword (``type``, ``format``, ``required``, ``anyOf``…).
    """

    pointer: str
    message: str
    keyword: str


@dataclass(frozen=True, slots=True)
class BundledModel:
    """One folder of ``schemas/``: an entity type's schema, @context and valid examples."""

    type_name: str
    schema: Schema
    context: dict[str, Any]
    examples: dict[str, dict[str, Any]]  # file name -> key-values document
    path: Path


# -- formats ---------------------------------------------------------------------------------

# RFC 3339 date-time / full-time, except that the offset may be missing: Smart Data Models
# examples carry local times such as "11:00:00" and "2016-11-30T07:00:00", which a broker must
# not refuse. Everything else (ranges, shape) stays strict.
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?$", re.ASCII
)
_TIME = re.compile(
    r"^(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.\d+)?(?:[Zz]|[+-](?P<oh>\d{2}):(?P<om>\d{2}))?$",
    re.ASCII,
)


def _is_lenient_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not _DATE_TIME.match(instance):
        return False
    text = instance.replace("t", "T").replace("z", "Z")
    if text[17:19] == "60":  # a leap second: datetime cannot hold it, RFC 3339 allows it
        text = text[:17] + "59" + text[19:]
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_lenient_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    match = _TIME.match(instance)
    if match is None:
        return False
    hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"])
    offset_ok = match["oh"] is None or (int(match["oh"]) <= 23 and int(match["om"]) <= 59)
    return hour <= 23 and minute <= 59 and second <= 60 and offset_ok


def _is_date(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", instance, re.ASCII):
        return False
    try:
        date.fromisoformat(instance)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1)
def format_checker() -> FormatChecker:
    """Every format jsonschema knows (date, uri, email, ipv4…), lenient ``date-time``/``time``."""
    checker = FormatChecker()
    checker.checks("date-time")(_is_lenient_date_time)
    checker.checks("time")(_is_lenient_time)
    checker.checks("date")(_is_date)
    checker.checks("regex")(patterns.is_regex)
    return checker


# -- offline $ref registry -------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    with path.open("rb") as f:
        return json.load(f)


@lru_cache(maxsize=8)
def common_registry(common_dir: Path = DEFAULT_SCHEMAS_DIR / "common") -> Registry[Any]:
    """The offline registry of shared schemas: ``ref-map.json`` maps each remote URL to a file.

    Resources are created as draft 2020-12 whatever their ``$schema`` says, because
    ``gtfs-schema.json`` declares the unknown dialect ``http://json-schema.org/schema#``.
    The registry has no ``retrieve`` callable, so a URL it lacks is unresolvable, never fetched.
    """
    ref_map: dict[str, str] = _read_json(common_dir / "ref-map.json")
    resources: list[tuple[str, Resource[Any]]] = []
    for url, file_name in ref_map.items():
        if url.startswith("_"):  # "_comment"
            continue
        contents = _read_json(common_dir / file_name)
        resources.append((url, DRAFT202012.create_resource(contents)))
    registry: Registry[Any] = Registry()
    return registry.with_resources(resources).crawl()


# -- schemas ---------------------------------------------------------------------------------


def _dialect(schema: Mapping[str, Any]) -> tuple[type[Validator], Specification[Any]]:
    declared = schema.get("$schema")
    if declared is None:
        return _DIALECTS["https://json-schema.org/draft/2020-12/schema"]
    if not isinstance(declared, str) or declared.rstrip("#") not in _DIALECTS:
        raise BadRequestData(
            f"Unsupported $schema {declared!r}: use draft-07, 2019-09 or 2020-12"
            " (https://json-schema.org/draft/2020-12/schema)"
        )
    return _DIALECTS[declared.rstrip("#")]


def _unresolvable_refs(
    resource: Resource[Any], registry: Registry[Any], specification: Specification[Any]
) -> Iterator[tuple[str, str]]:
    """Yield ``(ref, reason)`` for every ``$ref`` reachable from ``resource`` that cannot be
    resolved offline, following resolved references into the shared schemas as well."""
    seen: set[int] = set()
    stack = [(resource, registry.resolver_with_root(resource))]
    while stack:
        current, resolver = stack.pop()
        resolver = resolver.in_subresource(current)
        contents = current.contents
        if id(contents) in seen:
            continue
        seen.add(id(contents))
        if isinstance(contents, Mapping):
            for keyword in _REF_KEYWORDS:
                ref = contents.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    resolved = resolver.lookup(ref)
                except referencing.exceptions.Unresolvable as err:
                    yield ref, _unresolvable_reason(err)
                    continue
                stack.append((specification.create_resource(resolved.contents), resolved.resolver))
        stack.extend((sub, resolver) for sub in current.subresources())


def _unresolvable_reason(err: referencing.exceptions.Unresolvable) -> str:
    if isinstance(err, referencing.exceptions.PointerToNowhere):
        return "its JSON pointer points to nothing"
    if isinstance(err, referencing.exceptions.NoSuchAnchor):
        return "no such anchor"
    return "not a bundled schema (remote schemas are never fetched)"


def _compile(schema: Any, registry: Registry[Any] | None) -> Validator:
    if not isinstance(schema, dict):
        raise BadRequestData("A schema must be a JSON object")
    validator_class, specification = _dialect(schema)
    try:
        validator_class.check_schema(schema)
    except SchemaError as err:
        where = "/" + "/".join(_escape(p) for p in err.absolute_path)
        raise BadRequestData(
            f"Invalid JSON Schema at {where if err.absolute_path else '(root)'}: {err.message}"
        ) from None
    patterns.check_patterns(schema)
    registry = common_registry() if registry is None else registry
    resource = specification.create_resource(schema)
    missing = sorted(set(_unresolvable_refs(resource, registry, specification)))
    if missing:
        listed = "; ".join(f"{ref} ({reason})" for ref, reason in missing)
        raise BadRequestData(f"Unresolvable $ref in schema: {listed}")
    return validator_class(schema, registry=registry, format_checker=format_checker())


def check_schema(schema: Schema, registry: Registry[Any] | None = None) -> None:
    """Raise BadRequestData if ``schema`` is not a valid JSON Schema of a supported dialect, or
    if any ``$ref`` in it (or in the shared schemas it reaches) cannot be resolved offline.

    ``registry`` defaults to :func:`common_registry` of the bundled ``schemas/common``.
    """
    _compile(schema, registry)


class SchemaValidator:
    """A schema compiled once (after :func:`check_schema`), validating key-values documents."""

    __slots__ = ("_fast", "_validator", "schema")

    def __init__(self, schema: Schema, registry: Registry[Any] | None = None) -> None:
        self.schema = schema
        self._validator = _compile(schema, registry)
        self._fast = _fast_validator(schema) if registry is None else None

    def validate(self, doc: Mapping[str, Any]) -> list[Violation]:
        """Every violation in ``doc``, sorted by instance location (array indexes numerically);
        an empty list means valid.

        Valid documents (the write path's common case) are recognised by the compiled Rust
        validator in microseconds; only a document it refuses is walked again by ``jsonschema``
        for the full list of violations, which also stays the authority on the verdict.
        """
        if self._fast is not None and self._fast.is_valid(doc):
            return []
        found: dict[tuple[tuple[tuple[int, int | str], ...], str, str], Violation] = {}
        for error in _leaf_errors(self._validator.iter_errors(doc)):
            path = list(error.absolute_path)
            if error.validator == "required":
                path.append(_missing_member(error))
            violation = Violation(
                "".join("/" + _escape(p) for p in path), error.message, str(error.validator)
            )
            sort_key = tuple((0, p) if isinstance(p, int) else (1, str(p)) for p in path)
            found.setdefault((sort_key, violation.keyword, violation.message), violation)
        return [found[k] for k in sorted(found)]

    def is_valid_fast(self, doc: Mapping[str, Any]) -> bool:
        """True when the compiled Rust validator accepts ``doc`` (microseconds); False means
        ``validate`` must list the violations (or find none where the engines differ)."""
        return self._fast is not None and bool(self._fast.is_valid(doc))

    def is_valid(self, doc: Mapping[str, Any]) -> bool:
        return bool(self._validator.is_valid(doc))


def _retrieve_common(uri: str) -> Any:
    """$refs of the Rust validator resolve from the bundled shared schemas only: never fetched."""
    common = DEFAULT_SCHEMAS_DIR / "common"
    ref_map: dict[str, str] = _read_json(common / "ref-map.json")
    file_name = ref_map.get(uri) or ref_map.get(uri.split("#")[0])
    if file_name is None:
        raise KeyError(f"{uri} is not a bundled schema")
    return _read_json(common / file_name)


def _fast_validator(schema: Schema) -> Any:
    """The same schema compiled by jsonschema-rs (formats as lenient as ours), or None when it
    cannot compile it, in which case ``jsonschema`` alone decides."""
    try:
        return jsonschema_rs.validator_for(
            schema,
            formats={
                "date-time": _is_lenient_date_time,
                "time": _is_lenient_time,
                "date": _is_date,
            },
            validate_formats=True,
            retriever=_retrieve_common,
            pattern_options=jsonschema_rs.RegexOptions(),  # linear time, like RE2
        )
    except Exception:  # any compile problem: fall back to the reference implementation
        return None


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _missing_member(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    for name in error.validator_value:
        if name not in instance and error.message.startswith(repr(name)):
            return str(name)
    return ""


def _leaf_errors(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """Replace each failed ``anyOf``/``oneOf`` by the errors of its closest branch.

    The closest branch is the one whose shallowest error lies deepest in the instance (it got
    furthest, e.g. the GeoJSON Point branch for ``{"type": "Point", "coordinates": ["x", 1]}``),
    then the one with fewest errors. When no branch gets below the combinator's own location
    and several tie, the combinator's error is kept: no branch is a credible intent.
    """
    for error in errors:
        if error.validator not in ("anyOf", "oneOf") or not error.context:
            yield error
            continue
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        depth = len(error.absolute_path)

        def score(item: tuple[int, list[ValidationError]]) -> tuple[int, int]:
            return (min(len(e.absolute_path) for e in item[1]), -len(item[1]))

        ranked = sorted(branches.items(), key=score, reverse=True)
        best = score(ranked[0])
        if len(ranked) > 1 and best == score(ranked[1]) and best[0] == depth:
            yield error
            continue
        yield from _leaf_errors(ranked[0][1])


# -- bundled models --------------------------------------------------------------------------


def load_bundled(dir: Path = DEFAULT_SCHEMAS_DIR) -> list[BundledModel]:
    """Every ``<dir>/<Type>/schema.json`` with its ``context.jsonld`` and ``examples/*.json``,
    sorted by type name. ``common/`` holds shared ``$ref`` targets, not a model."""
    models: list[BundledModel] = []
    for schema_path in sorted(dir.glob("*/schema.json")):
        folder = schema_path.parent
        examples = {p.name: _read_json(p) for p in sorted((folder / "examples").glob("*.json"))}
        models.append(
            BundledModel(
                type_name=folder.name,
                schema=_read_json(schema_path),
                context=_read_json(folder / "context.jsonld"),
                examples=examples,
                path=folder,
            )
        )
    return models


class ValidatorCache:
    """A small LRU of compiled validators keyed by e.g. ``(tenant, type, version)``: compiling
    walks every reachable ``$ref``, so it is done once per immutable schema version."""

    def __init__(self, maxsize: int = 256, registry: Registry[Any] | None = None) -> None:
        self._maxsize = maxsize
        self._registry = registry
        self._entries: OrderedDict[Hashable, SchemaValidator] = OrderedDict()

    def get(self, key: Hashable, schema: Schema) -> SchemaValidator:
        validator = self._entries.get(key)
        if validator is None:
            validator = SchemaValidator(schema, self._registry)
            self._entries[key] = validator
            if len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return validator

    def __len__(self) -> int:
        return len(self._entries)
