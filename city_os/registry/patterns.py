"""Schema registry: the regular expressions of data stewards' schemas, on a linear-time engine.

Layer: registry/ (pure). ``pattern``, ``patternProperties`` (and the ``additionalProperties``
that depends on it) and ``format: regex`` are evaluated with RE2 (google-re2), never Python's
backtracking ``re``: ``"(a+)+$"`` against 1,800 ``a`` and a ``!`` took Python minutes of CPU with
the event loop held (and ``re`` does not release the GIL, so no thread helps). The fast validator
(jsonschema-rs) uses the Rust ``regex`` crate (``RegexOptions``), also linear-time. Both read
``\\d`` and ``\\w`` as ASCII, as ECMA-262 (JSON Schema's dialect) does, so they agree on what a
pattern matches. A schema whose patterns either engine refuses (backreferences, lookaround) is
refused at registration by ``check_patterns``, with the pointer of the pattern. jsonschema's
``unevaluatedProperties`` applies ``patternProperties`` with Python's ``re`` internally, so the
two keywords cannot be combined in one schema (refused with a clear error).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema_rs
import re2
from jsonschema.exceptions import ValidationError

from city_os.errors import BadRequestData

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refused pattern to stderr
# Schema members whose values are data, not subschemas: their "pattern" keys are not patterns.
_DATA_MEMBERS = frozenset({"enum", "const", "examples", "default"})


class PatternError(ValueError):
    pass


@lru_cache(maxsize=4096)
def compiled(pattern: str) -> Any:
    """The RE2 program of ``pattern`` (cached: schemas repeat their patterns on every write)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PatternError(reason.decode() if isinstance(reason, bytes) else str(reason)) from None


def search(pattern: str, text: str) -> bool:
    return compiled(pattern).search(text) is not None


def _rust_refusal(pattern: str) -> str | None:
    try:
        jsonschema_rs.validator_for(
            {"pattern": pattern}, pattern_options=jsonschema_rs.RegexOptions()
        )
    except jsonschema_rs.ValidationError as exc:
        return str(exc).splitlines()[0]
    return None


def _patterns(schema: Any) -> Iterator[tuple[str, str]]:
    """(JSON pointer, pattern) of every pattern in a schema, and ("…", "") markers for an
    ``unevaluatedProperties`` (see ``check_patterns``). Iterative."""
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{where}/{i}") for i, item in enumerate(node))
            continue
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            here = f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key in _DATA_MEMBERS:
                continue
            if key == "pattern" and isinstance(value, str):
                yield here, value
            elif key == "patternProperties" and isinstance(value, Mapping):
                yield from ((f"{here}/{p}", p) for p in value if isinstance(p, str))
                stack.extend((sub, f"{here}/{p}") for p, sub in value.items())
            elif key == "unevaluatedProperties":
                yield here, ""
                stack.append((value, here))
            else:
                stack.append((value, here))


def check_patterns(schema: Any) -> None:
    """Refuse a schema with a pattern RE2 or the Rust regex crate cannot run in linear time."""
    found = list(_patterns(schema))
    if any(p == "" for _, p in found) and any("/patternProperties/" in w for w, _ in found):
        raise BadRequestData(
            "Invalid JSON Schema: unevaluatedProperties cannot be combined with "
            "patternProperties here (their patterns would run on a backtracking engine)"
        )
    for where, pattern in found:
        if not pattern:
            continue
        try:
            compiled(pattern)
            reason = _rust_refusal(pattern)
        except PatternError as exc:
            reason = str(exc)
        if reason is not None:
            raise BadRequestData(
                f"Invalid JSON Schema at {where}: the pattern {pattern!r:.100} is not supported "
                f"({reason}); patterns run on a linear-time engine (RE2 syntax: no "
                "backreferences, no lookaround)"
            )


def is_regex(instance: object) -> bool:
    """``format: regex`` on RE2: a value compiles, in linear time."""
    if not isinstance(instance, str):
        return True
    try:
        compiled(instance)
    except PatternError:
        return False
    return True


# -- jsonschema keywords (the library's own messages, RE2 matching) ----------------------------


def pattern(validator: Any, patrn: str, instance: Any, schema: Mapping[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not search(patrn, instance):
        yield ValidationError(f"{instance!r:.200} does not match {patrn!r}")


def pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for patrn, subschema in patterns.items():
        for key, value in instance.items():
            if search(patrn, key):
                yield from validator.descend(value, subschema, path=key, schema_path=patrn)


def additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Any:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = {
        key
        for key in instance
        if key not in properties and not any(search(p, key) for p in patterns)
    }
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        ordered = sorted(extras, key=str)
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in ordered)
            listed = ", ".join(repr(each) for each in sorted(patterns))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {listed}")
        else:
            names = ", ".join(repr(each) for each in ordered)
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


KEYWORDS = {
    "pattern": pattern,
    "patternProperties": pattern_properties,
    "additionalProperties": additional_properties,
}
