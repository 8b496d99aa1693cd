"""parse_type_selection (GS CIM 009 §4.17) and the type SQL shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import TypeAnd, TypeExpr, TypeName, TypeOr
from city_os.ngsild.query.type_selection import parse_type_selection, type_names
from city_os.store.postgres.query_sql import SqlParams, type_to_sql

N = TypeName

VALID: list[tuple[str, TypeExpr]] = [
    ("Building", N("Building")),
    (
        "https://smartdatamodels.org/dataModel.Building/Building",
        N("https://smartdatamodels.org/dataModel.Building/Building"),
    ),
    ("ngsi-ld:Foo", N("ngsi-ld:Foo")),
    ("Building|House", TypeOr((N("Building"), N("House")))),
    ("Building,House", TypeOr((N("Building"), N("House")))),
    ("(Home;Vehicle)", TypeAnd((N("Home"), N("Vehicle")))),
    ("(Home;Vehicle)|Motorhome", TypeOr((TypeAnd((N("Home"), N("Vehicle"))), N("Motorhome")))),
    ("(Home;Vehicle),Motorhome", TypeOr((TypeAnd((N("Home"), N("Vehicle"))), N("Motorhome")))),
    ("(A)", N("A")),
    ("A;B", TypeAnd((N("A"), N("B")))),
    ("A;B|C", TypeOr((TypeAnd((N("A"), N("B"))), N("C")))),
    # parentheses group any expression (ETSI 046_16 subscribes to "(Building|Tower)")
    ("(Building|Tower)", TypeOr((N("Building"), N("Tower")))),
    ("((A))", N("A")),
    ("(A|B);C", TypeOr((TypeAnd((N("A"), N("C"))), TypeAnd((N("B"), N("C")))))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parses(text: str, expected: TypeExpr) -> None:
    assert parse_type_selection(text) == expected


ERRORS: list[tuple[str, str]] = [
    ("", "empty"),
    ("A,", "expected an entity type, found end of input at position 3"),
    (",A", "expected an entity type, found ',' at position 1"),
    ("(A;B", "expected ')', found end of input"),
    ("(A|B", "expected ')', found end of input"),
    ("A B", "unexpected ' ' at position 2"),
    ("A)", "unexpected ')'"),
    ("A\x00", "NUL"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_type_selection(text)
    assert message in info.value.detail


def test_type_names() -> None:
    assert type_names(parse_type_selection("(A;B)|C,D")) == ("A", "B", "C", "D")


def _expand(term: str) -> str:
    return "https://example.org/" + term


@pytest.mark.parametrize(
    ("text", "sql", "args"),
    [
        ("A", "e.types && $1::text[]", [["https://example.org/A"]]),
        ("A,B", "e.types && $1::text[]", [["https://example.org/A", "https://example.org/B"]]),
        ("(A;B)", "e.types @> $1::text[]", [["https://example.org/A", "https://example.org/B"]]),
        (
            "(A;B)|C",
            "(e.types && $1::text[] OR e.types @> $2::text[])",
            [["https://example.org/C"], ["https://example.org/A", "https://example.org/B"]],
        ),
    ],
)
def test_sql(text: str, sql: str, args: list[object]) -> None:
    assert type_to_sql(parse_type_selection(text), _expand) == (sql, args)


def test_sql_numbering_starts_after_callers_args() -> None:
    sql, args = type_to_sql(parse_type_selection("A"), _expand, params=SqlParams(start=4))
    assert (sql, args) == ("e.types && $4::text[]", [["https://example.org/A"]])


@given(st.text(st.sampled_from(list("AB;|,() :/")), max_size=20) | st.text(max_size=20))
def test_any_text_parses_or_is_bad_request(text: str) -> None:
    try:
        expr = parse_type_selection(text)
    except BadRequestData:
        return
    sql, args = type_to_sql(expr, _expand)
    assert "example.org" not in sql
    assert sql.count("$") == len(args)
