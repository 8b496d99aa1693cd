"""Checks shared by the parsers of NGSI-LD data types whose members are validated one by one
(Subscription §5.2.12, CSourceRegistration §5.2.9): each failure a 400 BadRequestData that names
the member.

Layer: ngsild/ (pure, no I/O).
"""

from __future__ import annotations

from typing import Any, Final

from city_os.errors import BadRequestData
from city_os.ngsild.query.q import check_text

MAX_TEXT: Final = 4096  # characters of a free-text member


def fail(member: str, problem: str) -> BadRequestData:
    return BadRequestData(f"{member}: {problem}")


def text_member(value: Any, member: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value:
        raise fail(member, "must be a non-empty string")
    if len(value) > limit:
        raise fail(member, f"longer than {limit} characters")
    return check_text(value, member)


def object_member(value: Any, member: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(member, "must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise fail(member, f"unknown member {', '.join(unknown)}")
    return value


def positive_member(value: Any, member: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail(member, "must be a number greater than 0")
    if value > 10**12:
        raise fail(member, "is too large")
    return value
