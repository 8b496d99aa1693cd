"""parse_scopeq (GS CIM 009 §4.19) and the scope SQL shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import ScopeAnd, ScopeExpr, ScopeMatch, ScopeOr
from city_os.ngsild.query.scope import parse_scope, parse_scopeq
from city_os.store.postgres.query_sql import scope_to_sql

M = ScopeMatch

VALID: list[tuple[str, ScopeExpr]] = [
    ("/Madrid", M(("Madrid",))),
    ("/Madrid/Gardens", M(("Madrid", "Gardens"))),
    ("/Madrid/Gardens/#", M(("Madrid", "Gardens"), descendants=True)),
    ("/#", M((), descendants=True)),
    ("/Madrid/+/ParqueNorte", M(("Madrid", "+", "ParqueNorte"))),
    ("/+", M(("+",))),
    ("/+/#", M(("+",), descendants=True)),
    ("/佐賀/避難所_1", M(("佐賀", "避難所_1"))),
    ("/a|/b", ScopeOr((M(("a",)), M(("b",))))),
    ("/a,/b", ScopeOr((M(("a",)), M(("b",))))),
    (
        "(/Madrid/Districts;/CompanyA)",
        ScopeAnd((M(("Madrid", "Districts")), M(("CompanyA",)))),
    ),
    (
        "(/Madrid/Districts;/CompanyA)|/CompanyB",
        ScopeOr((ScopeAnd((M(("Madrid", "Districts")), M(("CompanyA",)))), M(("CompanyB",)))),
    ),
    (
        "(/Madrid/Districts;/CompanyA),/CompanyB",
        ScopeOr((ScopeAnd((M(("Madrid", "Districts")), M(("CompanyA",)))), M(("CompanyB",)))),
    ),
    ("(/a)", M(("a",))),
    ("/a;/b", ScopeAnd((M(("a",)), M(("b",))))),
    ("/a;/b|/c", ScopeOr((ScopeAnd((M(("a",)), M(("b",)))), M(("c",))))),
    ("(/a/#;/b)", ScopeAnd((M(("a",), descendants=True), M(("b",))))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parses(text: str, expected: ScopeExpr) -> None:
    assert parse_scopeq(text) == expected


ERRORS: list[tuple[str, str]] = [
    ("", "empty"),
    ("Madrid", "expected '/', found 'M' at position 1"),
    ("/", "expected a scope level"),
    ("/a/", "expected a scope level"),
    ("//a", "expected a scope level"),
    ("/a b", "expected a scope level, found 'a b'"),
    ("/1a", "expected a scope level"),
    ("/a/#/b", "unexpected '/'"),
    ("/a#", "unexpected '#'"),
    ("/a+", "unexpected '+' at position 3"),
    ("(/a;/b", "expected ')'"),
    ("(/a|/b", "expected ')', found end of input"),
    ("/a|", "expected '/', found end of input"),
    ("/a)", "unexpected ')'"),
    ("/a\x00", "NUL"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_scopeq(text)
    assert message in info.value.detail


def test_entity_scope() -> None:
    assert parse_scope("/Saga/Shelters") == ("Saga", "Shelters")
    for bad in ("Saga", "/", "/a/", "/a/+", "/a/#"):
        with pytest.raises(BadRequestData):
            parse_scope(bad)


@given(st.text(st.sampled_from(list("/ab+#;|,()1 ")), max_size=30) | st.text(max_size=20))
def test_any_text_parses_or_is_bad_request(text: str) -> None:
    try:
        expr = parse_scopeq(text)
    except BadRequestData:
        return
    sql, args = scope_to_sql(expr)
    assert "/" not in sql  # scopes and regexes travel as arguments only
    assert sql.count("$") == len(args)


@pytest.mark.parametrize(
    ("text", "sql", "args"),
    [
        ("/a/b", "e.scopes @> $1::text[]", [["/a/b"]]),
        ("/#", "coalesce(cardinality(e.scopes), 0) > 0", []),
        (
            "/a/+/#",
            "EXISTS (SELECT 1 FROM unnest(e.scopes) AS s(scope) WHERE s.scope ~ $1)",
            ["^/a/[^/]+(/.*)?$"],
        ),
    ],
)
def test_sql(text: str, sql: str, args: list[object]) -> None:
    assert scope_to_sql(parse_scopeq(text)) == (sql, args)
