"""parse_q (GS CIM 009 §4.9): every grammar rule, every error, and fuzzing of the SQL builder."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.errors import BadRequestData, OperationNotSupported
from city_os.ngsild.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Exists,
    LinkedPath,
    Number,
    Or,
    Pattern,
    QExpr,
    Range,
    Temporal,
    Text,
    Uri,
    ValueList,
)
from city_os.ngsild.query.q import parse_q
from city_os.store.postgres.query_sql import jsonpath_string, q_to_sql


def p(*names: str, keys: tuple[str, ...] = ()) -> AttrPath:
    return AttrPath(names, keys)


def dt(text: str, canonical: str) -> Temporal:
    return Temporal(text, "dateTime", canonical)


VALID: list[tuple[str, QExpr]] = [
    # existence
    ("temperature", Exists(p("temperature"))),
    ("!temperature", Exists(p("temperature"), negated=True)),
    ("isMonitoredBy", Exists(p("isMonitoredBy"))),
    ("温度_1", Exists(p("温度_1"))),
    # operators
    ("temperature==20", Comparison(p("temperature"), "==", Number("20"))),
    ("a!=20", Comparison(p("a"), "!=", Number("20"))),
    ("a>20", Comparison(p("a"), ">", Number("20"))),
    ("a>=20", Comparison(p("a"), ">=", Number("20"))),
    ("a<20", Comparison(p("a"), "<", Number("20"))),
    ("a<=20", Comparison(p("a"), "<=", Number("20"))),
    ("a~=^x.*", Pattern(p("a"), "^x.*")),
    ("a!~=^x.*", Pattern(p("a"), "^x.*", negated=True)),
    # numbers
    ("a==-1", Comparison(p("a"), "==", Number("-1"))),
    ("a==0.5", Comparison(p("a"), "==", Number("0.5"))),
    ("a==1.5e3", Comparison(p("a"), "==", Number("1.5e3"))),
    ("a==-2E-2", Comparison(p("a"), "==", Number("-2E-2"))),
    # strings
    ('brandName!="Mercedes"', Comparison(p("brandName"), "!=", Text("Mercedes"))),
    ('a=="a\\"b"', Comparison(p("a"), "==", Text('a"b'))),
    ('a=="x;y|z)"', Comparison(p("a"), "==", Text("x;y|z)"))),
    ('a=="\\u00e9\\n"', Comparison(p("a"), "==", Text("é\n"))),
    ('a==""', Comparison(p("a"), "==", Text(""))),
    # booleans, URIs, bare terms
    ("a==true", Comparison(p("a"), "==", Boolean(True))),
    ("a!=false", Comparison(p("a"), "!=", Boolean(False))),
    (
        "isParked==urn:ngsi-ld:OffStreetParking:Downtown1",
        Comparison(p("isParked"), "==", Uri("urn:ngsi-ld:OffStreetParking:Downtown1")),
    ),
    (
        "a==https://example.org/a?b=c#d",
        Comparison(p("a"), "==", Uri("https://example.org/a?b=c#d")),
    ),
    ("gender==Male", Comparison(p("gender"), "==", Uri("Male"))),
    ("a==trueish", Comparison(p("a"), "==", Uri("trueish"))),
    # dates and times
    (
        "a.observedAt>=2017-12-24T12:00:00Z",
        Comparison(
            p("a", "observedAt"), ">=", dt("2017-12-24T12:00:00Z", "2017-12-24T12:00:00.000000")
        ),
    ),
    (
        "a<2017-12-24T12:00:00.25Z",
        Comparison(p("a"), "<", dt("2017-12-24T12:00:00.25Z", "2017-12-24T12:00:00.250000")),
    ),
    (
        "a<2017-12-24T12:00:00,5Z",
        Comparison(p("a"), "<", dt("2017-12-24T12:00:00,5Z", "2017-12-24T12:00:00.500000")),
    ),
    ("a==2024-02-29", Comparison(p("a"), "==", Temporal("2024-02-29", "date", "2024-02-29"))),
    ("a>12:30:00Z", Comparison(p("a"), ">", Temporal("12:30:00Z", "time", "12:30:00.000000"))),
    # ranges
    ("a==1..5", Comparison(p("a"), "==", Range(Number("1"), Number("5")))),
    ("a!=-5..-1", Comparison(p("a"), "!=", Range(Number("-5"), Number("-1")))),
    ('a=="a".."c"', Comparison(p("a"), "==", Range(Text("a"), Text("c")))),
    (
        "a==2020-01-01..2021-01-01",
        Comparison(
            p("a"),
            "==",
            Range(
                Temporal("2020-01-01", "date", "2020-01-01"),
                Temporal("2021-01-01", "date", "2021-01-01"),
            ),
        ),
    ),
    # value lists
    ('a=="x","y"', Comparison(p("a"), "==", ValueList((Text("x"), Text("y"))))),
    ("a==1,2,3", Comparison(p("a"), "==", ValueList((Number("1"), Number("2"), Number("3"))))),
    (
        "a!=urn:a:1,urn:a:2",
        Comparison(p("a"), "!=", ValueList((Uri("urn:a:1"), Uri("urn:a:2")))),
    ),
    # attribute paths
    ("a.b.c==1", Comparison(p("a", "b", "c"), "==", Number("1"))),
    ('address[city]=="Berlin"', Comparison(p("address", keys=("city",)), "==", Text("Berlin"))),
    (
        "sensor.rawdata[airquality.particulate]==40",
        Comparison(p("sensor", "rawdata", keys=("airquality", "particulate")), "==", Number("40")),
    ),
    ("a[b][c]==1", Comparison(p("a", keys=("b", "c")), "==", Number("1"))),
    ("a.b[c]", Exists(p("a", "b", keys=("c",)))),
    ('color[*]=="red"', Comparison(p("color", keys=("*",)), "==", Text("red"))),
    ('a[@value]=="x"', Comparison(p("a", keys=("@value",)), "==", Text("x"))),
    # linked entities
    (
        "sensor{humidity}==40",
        Comparison(AttrPath(("sensor",), (), LinkedPath((), p("humidity"))), "==", Number("40")),
    ),
    (
        "sensor{Device,Room:humidity}==40",
        Comparison(
            AttrPath(("sensor",), (), LinkedPath(("Device", "Room"), p("humidity"))),
            "==",
            Number("40"),
        ),
    ),
    (
        "a{T:b{c.d}}",
        Exists(
            AttrPath(
                ("a",), (), LinkedPath(("T",), AttrPath(("b",), (), LinkedPath((), p("c", "d"))))
            )
        ),
    ),
    # logic
    (
        'speed>50;brandName!="Mercedes"',
        And(
            (
                Comparison(p("speed"), ">", Number("50")),
                Comparison(p("brandName"), "!=", Text("Mercedes")),
            )
        ),
    ),
    ("a|b", Or((Exists(p("a")), Exists(p("b"))))),
    ("a;b;c", And((Exists(p("a")), Exists(p("b")), Exists(p("c"))))),
    ("a|b;c", Or((Exists(p("a")), And((Exists(p("b")), Exists(p("c"))))))),
    ("a;b|c", Or((And((Exists(p("a")), Exists(p("b")))), Exists(p("c"))))),
    ("(a|b);c", And((Or((Exists(p("a")), Exists(p("b")))), Exists(p("c"))))),
    ("((a))", Exists(p("a"))),
    ("(a;b);c", And((Exists(p("a")), Exists(p("b")), Exists(p("c"))))),
    (
        '((speed>50|rpm>3000);brandName=="Mercedes")',
        And(
            (
                Or(
                    (
                        Comparison(p("speed"), ">", Number("50")),
                        Comparison(p("rpm"), ">", Number("3000")),
                    )
                ),
                Comparison(p("brandName"), "==", Text("Mercedes")),
            )
        ),
    ),
    (
        "(temperature>=20;temperature<=25)|capacity<=10",
        Or(
            (
                And(
                    (
                        Comparison(p("temperature"), ">=", Number("20")),
                        Comparison(p("temperature"), "<=", Number("25")),
                    )
                ),
                Comparison(p("capacity"), "<=", Number("10")),
            )
        ),
    ),
    # patterns: groups and classes keep ; and |, a quoted pattern may hold anything
    ("a~=(x|y);b", And((Pattern(p("a"), "(x|y)"), Exists(p("b"))))),
    ("a~=[;|)]x|b", Or((Pattern(p("a"), "[;|)]x"), Exists(p("b"))))),
    ('a~="x|y"', Pattern(p("a"), "x|y")),
    ("(a~=x\\)y)", Pattern(p("a"), "x\\)y")),
    ("(a~=^x)", Pattern(p("a"), "^x")),
    ("a==1)"[:-1], Comparison(p("a"), "==", Number("1"))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parses(text: str, expected: QExpr) -> None:
    assert parse_q(text) == expected


ERRORS: list[tuple[str, str]] = [
    ("", "empty query"),
    ("a==1)", "unexpected ')' at position 5"),
    ("(a", "expected ')', found end of input at position 3"),
    ("()", "expected an attribute name, found ')' at position 2"),
    ("a b", "unexpected 'b' at position 3"),
    ("a;", "expected an attribute name, found end of input at position 3"),
    ("|a", "expected an attribute name, found '|' at position 1"),
    ("1a==1", "expected an attribute name, found '1' at position 1"),
    ("a.==1", "expected an attribute name, found '=' at position 3"),
    ("a..b==1", "expected an attribute name"),
    ("a[]==1", "expected a member name, found ']' at position 3"),
    ("a[b==1", "expected ']', found '=' at position 4"),
    ("a{b", "expected '}', found end of input at position 4"),
    ("a==", "expected a value, found end of input at position 4"),
    ("a==;b", "expected a value, found ';' at position 4"),
    ("a==1,", "expected a value, found end of input at position 6"),
    ("a=1", "unexpected '=' at position 2"),
    ("a===1", "invalid value '=1' at position 4"),
    ("a==01", "invalid value '01' at position 4"),
    ("a==1.", "invalid value '1.' at position 4"),
    ("a==.5", "invalid value '.5' at position 4"),
    ("a==1e99999", "out of range"),
    ('a=="abc', "unterminated string at position 4"),
    ('a=="\\q"', "invalid string"),
    ('a=="\\u0000"', "NUL"),
    ("a==2026-13-01", "invalid date/time '2026-13-01'"),
    ("a==2026-02-30T00:00:00Z", "invalid date/time"),
    ("a==25:00:00Z", "invalid date/time"),
    ("a==2026-01-01T00:00:00+09:00", "invalid value"),
    ("a>true", "operator '>' needs a number, a quoted string or a date/time at position 3"),
    ("a<urn:x:y", "operator '<' needs"),
    ("a>1..2", "a range needs '==' or '!=', not '>' at position 2"),
    ("a>1,2", "a value list needs '==' or '!=', not '>'"),
    ('a==1.."x"', "a range needs two numbers"),
    ("a==true..false", "a range needs two numbers"),
    ("a==2020-01-01..2020-01-01T00:00:00Z", "a range needs two numbers"),
    ("a~=", "empty regular expression at position 4"),
    ("a~=(x", "invalid regular expression"),
    ("a~=;", "empty regular expression"),
    ("!a==1", "unexpected '=' at position 3"),
    ("!", "expected an attribute name"),
    ("a\x00", "NUL"),
    ("(" * 40 + "a" + ")" * 40, "nested deeper than 32"),
    ("a" + "{b" * 40 + "}" * 40, "nested deeper than 32"),
    ("a" * 20000, "longer than"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    assert message in info.value.detail
    assert info.value.detail.startswith("q: ")


Q_ALPHABET = st.sampled_from(list('ab.[]{}()!=<>~;|,"\\:-+*1029eE.TZ/# xé\x00'))


@settings(max_examples=2000)
@given(st.text(Q_ALPHABET, max_size=40) | st.text(max_size=40))
def test_any_text_parses_or_is_bad_request(text: str) -> None:
    try:
        parse_q(text)
    except BadRequestData:
        pass


def _expand(term: str) -> str:
    return "https://example.org/" + term


_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)
_STRINGS = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@settings(max_examples=300)
@given(
    name=_NAMES,
    sub=_NAMES,
    key=_NAMES,
    value=_STRINGS,
    number=st.integers() | st.floats(allow_nan=False, allow_infinity=False),
)
def test_sql_text_never_depends_on_request_values(
    name: str, sub: str, key: str, value: str, number: float
) -> None:
    """The SQL text is the same whatever the names and literals: they are all in ``args``."""
    regex = json.dumps(re.escape(value) or "x")
    text = f"{name}.{sub}[{key}]=={json.dumps(value)}|{name}>{json.dumps(number)};{name}~={regex}"
    expr = parse_q(text)
    sql, args = q_to_sql(expr, _expand)
    reference, _ = q_to_sql(parse_q('a.b[c]=="x"|a>1;a~="x"'), _expand)
    assert sql == reference
    assert all(isinstance(arg, str) for arg in args)


@given(_STRINGS)
def test_jsonpath_string_is_json_and_escapes_everything(value: str) -> None:
    literal = jsonpath_string(value)
    assert json.loads(literal) == value
    inner = literal[1:-1]
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in inner)
    # every quote inside is escaped, so the literal cannot be closed early
    assert inner.replace("\\\\", "").count('"') == inner.replace("\\\\", "").count('\\"')


@pytest.mark.parametrize("bad", ["\x00", "a\ud800"])
def test_jsonpath_string_refuses_what_postgres_cannot_hold(bad: str) -> None:
    with pytest.raises(ValueError):
        jsonpath_string(bad)


def test_sql_shapes() -> None:
    assert q_to_sql(parse_q("temperature"), _expand) == (
        "e.attrs ? $1",
        ["https://example.org/temperature"],
    )
    sql, args = q_to_sql(parse_q("!a|b==1"), _expand, alias="x")
    assert sql == "(NOT (x.attrs ? $1) OR x.attrs @? $2::jsonpath)"
    assert args[1].startswith('$."https://example.org/b"[*] ? (exists(@."value" ? (@ == 1))')


def test_linked_paths_need_the_entities_table() -> None:
    with pytest.raises(OperationNotSupported):
        q_to_sql(parse_q("a{b}==1"), _expand)
    with pytest.raises(ValueError):
        q_to_sql(parse_q("a{b}==1"), _expand, entities_table="x; DROP TABLE y")
