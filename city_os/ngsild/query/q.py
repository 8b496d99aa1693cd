"""Parser of the NGSI-LD Query Language (GS CIM 009 v1.9.1 §4.9): ``q`` text → ``QExpr``.

Pure, no I/O. A hand-written recursive-descent parser over characters, because lexing depends
on context (``..`` ends a number but not a URI; ``|`` inside an unquoted regex group is part of
the pattern). ``;`` (AND) binds tighter than ``|`` (OR); parentheses nest. Beyond the ABNF we
accept, as most brokers do: ``!attr`` (non-existence), nested parentheses (the spec's own
example 6 needs them), ``a[b][c]`` as well as ``a[b.c]``, bare terms and URIs inside value
lists, and a quoted regex (``a~="x|y"``) so that ``|`` can be used in a pattern. Blanks (JSON
whitespace) between tokens are ignored, as Orion-LD does (``temperature > 0 ; name == "x"``); an
attribute path, a value and an operator stay one token each (docs/interoperability.md).

Every syntax error raises ``BadRequestData`` whose detail names the 1-based position and the
offending text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from decimal import Decimal
from typing import Final, cast

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    CompOp,
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
    Value,
    ValueList,
)
from city_os.ngsild.query.q_literals import DATE, DATETIME, TIME
from city_os.ngsild.query.q_literals import check_text as check_text
from city_os.ngsild.query.q_literals import temporal_literal as temporal_literal

MAX_LENGTH: Final = 16384
MAX_DEPTH: Final = 32
# Exponents beyond this would overflow PostgreSQL numeric inside a jsonpath literal.
_MAX_EXPONENT: Final = 1000

_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_RAW = re.compile(r"[^\s;|(),\"]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_KEY = re.compile(r"\*|[^\s.\[\]{}();|,\"=!<>~]+")

# Longest first: '!~=' before '!=', '>=' before '>'.
_OPERATORS: Final = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_VALUE_END: Final = frozenset(";|),")
# Ignored between tokens: the insignificant whitespace of JSON (RFC 8259 §2).
_BLANKS: Final = frozenset(" \t\r\n")
_ORDERING: Final = frozenset({">", ">=", "<", "<="})


def parse_q(text: str) -> QExpr:
    """Parse an NGSI-LD ``q`` expression; raise ``BadRequestData`` on any syntax error."""
    return _Parser(text).parse()


def is_name(text: str) -> bool:
    """True for an NGSI-LD query AttrName: a letter, then letters, digits or ``_``."""
    return _scan_name(text, 0) == len(text) and bool(text)


def _is_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_term_char(ch: str) -> bool:
    return ch == "_" or unicodedata.category(ch)[0] in "LN"


def _scan_name(text: str, i: int) -> int:
    """End of the AttrName starting at ``i`` (``i`` itself if there is none)."""
    if i >= len(text) or not _is_letter(text[i]):
        return i
    j = i + 1
    while j < len(text) and _is_term_char(text[j]):
        j += 1
    return j


def _show(text: str, i: int) -> str:
    if i >= len(text):
        return "end of input"
    return repr(text[i])


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    # --- helpers ---------------------------------------------------------------------------

    def error(self, message: str, pos: int | None = None) -> BadRequestData:
        at = self.i if pos is None else pos
        return BadRequestData(f"q: {message} at position {at + 1}")

    def unexpected(self) -> BadRequestData:
        return self.error(f"unexpected {_show(self.s, self.i)}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def blank(self) -> str:
        """Skip blanks; the next character (as ``peek``)."""
        while self.i < len(self.s) and self.s[self.i] in _BLANKS:
            self.i += 1
        return self.peek()

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error(f"expected {ch!r}, found {_show(self.s, self.i)}")
        self.i += 1

    # --- grammar ---------------------------------------------------------------------------

    def parse(self) -> QExpr:
        if not self.s:
            raise BadRequestData("q: empty query")
        if len(self.s) > MAX_LENGTH:
            raise BadRequestData(f"q: longer than {MAX_LENGTH} characters")
        check_text(self.s, "q")
        expr = self.disjunction(0)
        if self.blank():
            raise self.unexpected()
        return expr

    def disjunction(self, depth: int) -> QExpr:
        terms = [self.conjunction(depth)]
        while self.blank() == "|":
            self.i += 1
            terms.append(self.conjunction(depth))
        return terms[0] if len(terms) == 1 else Or(_flatten(terms, Or))

    def conjunction(self, depth: int) -> QExpr:
        terms = [self.primary(depth)]
        while self.blank() == ";":
            self.i += 1
            terms.append(self.primary(depth))
        return terms[0] if len(terms) == 1 else And(_flatten(terms, And))

    def primary(self, depth: int) -> QExpr:
        if self.blank() == "(":
            if depth >= MAX_DEPTH:
                raise self.error(f"parentheses nested deeper than {MAX_DEPTH}")
            self.i += 1
            expr = self.disjunction(depth + 1)
            self.blank()
            self.expect(")")
            return expr
        return self.term()

    def term(self) -> QExpr:
        if self.peek() == "!" and not self.s.startswith(("!=", "!~="), self.i):
            self.i += 1
            self.blank()
            path = self.path(0)
            if self.blank() not in ("", ";", "|", ")"):
                raise self.unexpected()
            return Exists(path, negated=True)
        path = self.path(0)
        self.blank()
        op_pos = self.i
        op = next((o for o in _OPERATORS if self.s.startswith(o, self.i)), None)
        if op is None:
            if self.peek() not in ("", ";", "|", ")"):
                raise self.unexpected()
            return Exists(path)
        self.i += len(op)
        self.blank()
        if op in ("~=", "!~="):
            return Pattern(path, self.regex(), negated=op == "!~=")
        comp_op = cast(CompOp, op)  # the remaining operators are exactly CompOp
        return Comparison(path, comp_op, self.operand(comp_op, op_pos))

    def name(self) -> str:
        end = _scan_name(self.s, self.i)
        if end == self.i:
            raise self.error(f"expected an attribute name, found {_show(self.s, self.i)}")
        name = self.s[self.i : end]
        self.i = end
        return name

    def path(self, depth: int) -> AttrPath:
        first = self.name()
        if self.peek() == "{":
            if depth >= MAX_DEPTH:
                raise self.error(f"linked paths nested deeper than {MAX_DEPTH}")
            self.i += 1
            types = self.linked_types()
            inner = self.path(depth + 1)
            self.expect("}")
            return AttrPath((first,), (), LinkedPath(types, inner))
        names = [first]
        while self.peek() == ".":
            self.i += 1
            names.append(self.name())
        keys: list[str] = []
        while self.peek() == "[":
            self.i += 1
            keys.append(self.key())
            while self.peek() == ".":
                self.i += 1
                keys.append(self.key())
            self.expect("]")
        return AttrPath(tuple(names), tuple(keys))

    def linked_types(self) -> tuple[str, ...]:
        """``Type1,Type2:`` before a linked path, if present (else nothing is consumed)."""
        j = self.i
        types: list[str] = []
        while True:
            end = _scan_name(self.s, j)
            if end == j:
                return ()
            types.append(self.s[j:end])
            if end < len(self.s) and self.s[end] == ",":
                j = end + 1
                continue
            if end < len(self.s) and self.s[end] == ":":
                self.i = end + 1
                return tuple(types)
            return ()

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if not m:
            raise self.error(f"expected a member name, found {_show(self.s, self.i)}")
        self.i = m.end()
        return m.group()

    def operand(self, op: CompOp, op_pos: int) -> Value | Range | ValueList:
        start = self.i
        first = self.value()
        self.blank()
        if self.s.startswith("..", self.i):
            if op not in ("==", "!="):
                raise self.error(f"a range needs '==' or '!=', not {op!r}", op_pos)
            self.i += 2
            self.blank()
            high = self.value()
            _check_range(first, high, start)
            return Range(first, high)
        if self.peek() == ",":
            if op not in ("==", "!="):
                raise self.error(f"a value list needs '==' or '!=', not {op!r}", op_pos)
            items = [first]
            while self.blank() == ",":
                self.i += 1
                self.blank()
                items.append(self.value())
            return ValueList(tuple(items))
        if op in _ORDERING and isinstance(first, Boolean | Uri):
            raise self.error(
                f"operator {op!r} needs a number, a quoted string or a date/time", start
            )
        return first

    def at_value_end(self, j: int) -> bool:
        return (
            j >= len(self.s)
            or self.s[j] in _VALUE_END
            or self.s[j] in _BLANKS
            or self.s.startswith("..", j)
        )

    def value(self) -> Value:
        start = self.i
        if self.peek() == '"':
            return Text(self.string())
        if self.peek() in ("", ";", "|", ")", ","):
            raise self.error(f"expected a value, found {_show(self.s, self.i)}")
        for pattern in (DATETIME, DATE, TIME):
            m = pattern.match(self.s, self.i)
            if m and self.at_value_end(m.end()):
                try:
                    literal = temporal_literal(m.group())
                except ValueError as exc:
                    raise self.error(f"invalid date/time {m.group()!r} ({exc})", start) from exc
                assert literal is not None  # the regex matched
                self.i = m.end()
                return literal
        m = _NUMBER.match(self.s, self.i)
        if m and self.at_value_end(m.end()):
            number = Decimal(m.group())
            if not -_MAX_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
                raise self.error(f"number {m.group()!r} out of range", start)
            self.i = m.end()
            return Number(m.group())
        for word, flag in (("true", True), ("false", False)):
            if self.s.startswith(word, self.i) and self.at_value_end(self.i + len(word)):
                self.i += len(word)
                return Boolean(flag)
        raw = _RAW.match(self.s, self.i)
        if raw is None:
            raise self.unexpected()
        token = raw.group()
        if _URI.fullmatch(token) or is_name(token):
            self.i = raw.end()
            return Uri(token)
        raise self.error(f"invalid value {token!r}", start)

    def string(self) -> str:
        start = self.i
        j = self.i + 1
        while j < len(self.s) and self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        if j >= len(self.s):
            raise self.error("unterminated string", start)
        try:
            value = json.loads(self.s[start : j + 1])
        except ValueError as exc:
            raise self.error(f"invalid string {self.s[start : j + 1]!r}", start) from exc
        assert isinstance(value, str)
        self.i = j + 1
        check_text(value, "q")
        return value

    def regex(self) -> str:
        start = self.i
        if self.peek() == '"':
            pattern = self.string()
        else:
            pattern = self.unquoted_regex()
        if not pattern:
            raise self.error("empty regular expression", start)
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise self.error(f"invalid regular expression {pattern!r}", start) from exc
        return pattern

    def unquoted_regex(self) -> str:
        """Up to ``;`` / ``|`` outside groups and classes, or an unbalanced ``)``; blanks before
        that end are not part of the pattern (blanks inside it are)."""
        j, depth, in_class = self.i, 0, False
        while j < len(self.s):
            c = self.s[j]
            if c == "\\":
                j += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
            elif c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif c in ";|" and depth == 0:
                break
            j += 1
        j = min(j, len(self.s))
        while j > self.i and self.s[j - 1] in _BLANKS and self.s[j - 2 : j - 1] != "\\":
            j -= 1
        pattern = self.s[self.i : j]
        self.i = j
        return pattern


def _flatten(terms: list[QExpr], kind: type[And] | type[Or]) -> tuple[QExpr, ...]:
    out: list[QExpr] = []
    for term in terms:
        if isinstance(term, kind):
            out.extend(term.terms)
        else:
            out.append(term)
    return tuple(out)


def _check_range(low: Value, high: Value, pos: int) -> None:
    ok = (
        (isinstance(low, Number) and isinstance(high, Number))
        or (isinstance(low, Text) and isinstance(high, Text))
        or (isinstance(low, Temporal) and isinstance(high, Temporal) and low.kind == high.kind)
    )
    if not ok:
        raise BadRequestData(
            f"q: a range needs two numbers, two quoted strings or two date/times of the same "
            f"kind at position {pos + 1}"
        )
