"""The pure limit checks: raw-body scans agree with the parsed document, integers are ASCII
digits in range, depth and U+0000 are found without recursion and named by JSON pointer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.errors import BadRequestData, PayloadTooLarge
from city_os.ngsild.entity import check_datetime
from city_os.ngsild.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_body,
    check_document,
    exact_containers,
    parse_int,
    walk_document,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def _containers(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_containers(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_containers(v) for v in value)
    return 0


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@settings(max_examples=300, deadline=None)  # a loaded machine is no failure
@given(value=JSON)
def test_raw_scans_agree_with_the_parsed_document(value: Any) -> None:
    raw = orjson.dumps(value)
    assert exact_containers(raw) == _containers(value)
    assert check_body(raw, DEFAULT_LIMITS) == _has_nul(value)  # \\u0000 vs an escaped backslash


@pytest.mark.parametrize(
    ("raw", "nul"),
    [
        (b'"a\\u0000"', True),
        (b'"a\\\\u0000"', False),  # a backslash, then the text u0000
        (b'"a\\\\\\u0000"', True),
        (b'{"\\u0000": 1}', True),
    ],
)
def test_nul_escapes_after_backslash_runs(raw: bytes, nul: bool) -> None:
    assert check_body(raw, DEFAULT_LIMITS) is nul


def test_too_many_containers_is_413_naming_the_limit() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        check_body(b"[" + b",".join([b"{}"] * 11) + b"]", Limits(json_containers=10))
    assert caught.value.extra["limit"] == "CITYOS_MAX_JSON_CONTAINERS"
    check_body(b'["[[[[[[[[[[[[[["]', Limits(json_containers=10))  # brackets in strings: fine


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"a": [{"b": "x\x00"}]}, "/a/0/b"),
        ({"a~b/c": "\x00"}, "/a~0b~1c"),
        ({"k\x00": 1}, "/k\x00"),
        (["\x00"], "/0"),
    ],
)
def test_nul_is_named_by_its_pointer(value: Any, pointer: str) -> None:
    with pytest.raises(BadRequestData) as caught:
        check_document(value, DEFAULT_LIMITS)
    assert caught.value.extra["member"] == pointer


@given(depth=st.integers(1, 3000))
def test_depth_without_recursion(depth: int) -> None:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    if depth <= 32:
        check_document(value, DEFAULT_LIMITS)
    else:
        with pytest.raises(BadRequestData, match="nested too deeply"):
            check_document(value, DEFAULT_LIMITS)


def test_walk_yields_in_slices() -> None:
    value = [[i, i] for i in range(50_000)]
    assert sum(1 for _ in walk_document(value, DEFAULT_LIMITS, nul=False)) >= 9


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("0", True), ("1000", True), ("1001", False), ("-1", False), ("²", False), ("٣", False),
     ("1e3", False), ("", False), (" 1", False), ("9" * 5000, False), (7, True), (True, False)],
)  # fmt: skip
def test_parse_int(raw: object, ok: bool) -> None:
    if ok:
        assert parse_int(raw, "limit", 0, 1000) == int(raw)  # type: ignore[call-overload]
    else:
        with pytest.raises(BadRequestData, match="limit must be an integer from 0 to 1000"):
            parse_int(raw, "limit", 0, 1000)


@pytest.mark.parametrize(
    ("stamp", "ok"),
    [
        ("2030-01-01T00:00:00+15:59", True),
        ("2030-01-01T00:00:00-1559", True),
        ("2030-01-01T00:00:00+16:00", False),
        ("2030-01-01T00:00:00-2359", False),
        ("9999-12-31T23:00:00-10:00", False),  # year 10000 in UTC
        ("9999-12-31T23:00:00Z", True),
        ("0001-01-01T00:00:00+01:00", False),  # year 0 in UTC
        ("2030-02-30T00:00:00Z", False),
    ],
)
def test_datetimes_both_python_and_postgresql_hold(stamp: str, ok: bool) -> None:
    if ok:
        assert check_datetime(stamp, "expiresAt") == stamp
    else:
        with pytest.raises(BadRequestData):
            check_datetime(stamp, "expiresAt")
