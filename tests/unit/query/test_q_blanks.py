"""Blanks in ``q`` (docs/interoperability.md): ignored between tokens, never inside one.

GS CIM 009 v1.9.1 §4.9 gives the Query Language as an ABNF grammar with no whitespace rule, and
says nothing of blanks; Orion-LD skips them between tokens, and clients (and people) write
``temperature > 0 ; name == "x"``. Accepting them is lenient without changing the meaning of any
query the grammar accepts: a blank never was allowed anywhere in a valid q, so no valid query is
read differently. Attribute paths, operators and values stay single tokens.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import (
    And,
    AttrPath,
    Comparison,
    Exists,
    Number,
    Or,
    Pattern,
    Range,
    Text,
    Uri,
    ValueList,
)
from city_os.ngsild.query.q import parse_q


def p(*names: str, keys: tuple[str, ...] = ()) -> AttrPath:
    return AttrPath(names, keys)


SPACED = [
    ("temperature > 0", Comparison(p("temperature"), ">", Number("0"))),
    (
        'a == "x" ; b < 3',
        And((Comparison(p("a"), "==", Text("x")), Comparison(p("b"), "<", Number("3")))),
    ),
    ("  a==1  ", Comparison(p("a"), "==", Number("1"))),
    ("a\t==\t1", Comparison(p("a"), "==", Number("1"))),
    ("a ==\r\n1", Comparison(p("a"), "==", Number("1"))),
    (
        "( a == 1 | b ) ; ! c",
        And(
            (
                Or((Comparison(p("a"), "==", Number("1")), Exists(p("b")))),
                Exists(p("c"), negated=True),
            )
        ),
    ),
    ("a == 1 .. 5", Comparison(p("a"), "==", Range(Number("1"), Number("5")))),
    ('a == "x" , "y"', Comparison(p("a"), "==", ValueList((Text("x"), Text("y"))))),
    ("a == urn:x:y ; b", And((Comparison(p("a"), "==", Uri("urn:x:y")), Exists(p("b"))))),
    ('a == " x ; y "', Comparison(p("a"), "==", Text(" x ; y "))),  # quoted: kept
    ("a ~= ^x y ; b", And((Pattern(p("a"), "^x y"), Exists(p("b"))))),  # inside a pattern: kept
    ("( a ~= x )", Pattern(p("a"), "x")),  # before its end: not part of it
    ('a ~= "x "', Pattern(p("a"), "x ")),
    ("a.b[c] >= 2", Comparison(p("a", "b", keys=("c",)), ">=", Number("2"))),
]


@pytest.mark.parametrize(("text", "expected"), SPACED)
def test_blanks_between_tokens_are_ignored(text: str, expected: object) -> None:
    assert parse_q(text) == expected


SPLIT_TOKENS = [
    ("a = = 1", "unexpected '=' at position 3"),  # an operator is one token
    ("a > = 1", "invalid value '=' at position 5"),
    ("a . b == 1", "unexpected '.' at position 3"),  # so is a path
    ("a [b] == 1", "unexpected '[' at position 3"),
    ("a == 1 2", "unexpected '2' at position 8"),  # and a value
    ("a == urn:x y", "unexpected 'y' at position 12"),
    ("a == 1 . . 2", "unexpected '.' at position 8"),
    (" ", "expected an attribute name, found end of input at position 2"),
    ("a ; ", "expected an attribute name, found end of input at position 5"),
]


@pytest.mark.parametrize(("text", "message"), SPLIT_TOKENS)
def test_blanks_inside_a_token_are_an_error(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    assert message in info.value.detail


_NAMES = st.sampled_from(["a", "temperature", "温度", "a.b", "a[b]", "a.b[c.d]"])
_VALUES = st.sampled_from(["1", "-2.5e3", '"x y"', '"a;b"', "true", "urn:x:y", "2024-01-01"])
_OPS = st.sampled_from(["==", "!=", ">", ">=", "<", "<="])
_BLANK = st.text(st.sampled_from(" \t\r\n"), max_size=3)


@st.composite
def _term(draw: st.DrawFn) -> list[str]:
    name = draw(_NAMES)
    shape = draw(st.sampled_from(["exists", "not", "compare", "list", "range"]))
    if shape == "exists":
        return [name]
    if shape == "not":
        return ["!", name]
    if shape == "compare":
        op = draw(_OPS)
        value = draw(_VALUES.filter(lambda v: op in ("==", "!=") or v not in ("true", "urn:x:y")))
        return [name, op, value]
    if shape == "list":
        return [name, "==", draw(_VALUES), ",", draw(_VALUES)]
    return [name, "!=", "1", "..", "5"]


@st.composite
def _expression(draw: st.DrawFn, depth: int = 0) -> list[str]:
    tokens: list[str] = []
    for i in range(draw(st.integers(1, 3))):
        if i:
            tokens.append(draw(st.sampled_from([";", "|"])))
        if depth < 2 and draw(st.booleans()):
            tokens += ["(", *draw(_expression(depth + 1)), ")"]
        else:
            tokens += draw(_term())
    return tokens


@settings(max_examples=500)
@given(tokens=_expression(), data=st.data())
def test_blanks_anywhere_between_tokens_change_nothing(
    tokens: list[str], data: st.DataObject
) -> None:
    """Any blanks between (and around) the tokens of a valid q: the same expression."""
    blanks = [data.draw(_BLANK) for _ in range(len(tokens) + 1)]
    spaced = "".join(b + t for b, t in zip(blanks, [*tokens, ""], strict=True))
    assert parse_q(spaced) == parse_q("".join(tokens))
