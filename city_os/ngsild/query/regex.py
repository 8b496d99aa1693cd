"""Client-supplied regular expressions (``idPattern``, q ``~=``), evaluated in linear time.

Layer: ngsild/ (pure). The SQL engine hands patterns to PostgreSQL, whose regex flavour is the
ARE ("advanced regular expression", Henry Spencer's engine); the in-process evaluator must give
the same answer without a backtracking engine, on which a pattern like ``(a+)+$`` takes
exponential time and would stall the notifier's event loop. So patterns are translated from ARE
syntax into RE2 (google-re2: automata, linear in the text) and every construct whose meaning
differs, or which RE2 cannot run at all, is refused by ``check_pattern`` with BadRequestData, so
that a subscription can be refused with a clear 400 instead of disagreeing with the query engine.

Translated (same meaning): ``.`` matches a newline (ARE's default: RE2's ``dot_nl``); ``\\Z`` is
RE2's ``\\z``; ARE's escapes ``\\b`` (backspace), ``\\B`` (a backslash), ``\\a \\e \\cX \\uXXXX
\\UXXXXXXXX \\xHHH``; ``\\d`` is ASCII digits in both; ``\\s`` and ``[[:space:]]`` are the 21
white-space code points of the database's C.UTF-8 ctype; ``\\w``, ``[[:alpha:]]``, ``[[:alnum:]]``,
``[[:upper:]]``, ``[[:lower:]]`` become Unicode general categories (``_CLASSES``), which agree with
glibc's C.UTF-8 tables on ASCII, Latin-1, kana, kanji and full-width forms but for four code
points (U+302E, U+302F, ª, º), and elsewhere differ on some combining marks, symbols such as
circled letters, and code points one Unicode version assigns and the other does not; under
``(?i)`` ``[[:upper:]]`` and ``[[:lower:]]`` are any letter, as in PostgreSQL; a leading ``***:``
director, leading embedded options ``(?c) (?i) (?s) (?t) (?q)`` and ``***=`` (literal).

Refused: back references and octal escapes (``\\1``), lookahead and lookbehind, ``\\m \\M \\y
\\Y`` word anchors, collating elements and equivalence classes (``[[.a.]] [[=a=]]``), the classes
``[[:punct:]] [[:print:]] [[:graph:]]`` (glibc and Unicode disagree on thousands of code points),
bounds over 255 (ARE's limit), ``{`` that starts no bound, possessive and doubled quantifiers,
embedded options other than the above (newline-sensitive ``n``/``m``/``p``/``w``, expanded ``x``,
basic ``b``/``e``) and options after the start, ``\\D \\S \\W`` inside brackets, unknown escapes,
and whatever RE2 itself cannot compile. Case-insensitive matching folds case by Unicode rules in
RE2 and by ``towlower`` in PostgreSQL: they differ only on a few special letters (the Kelvin sign).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import re2
from re2 import _re2

from city_os.errors import BadRequestData

_UNANCHORED: Final = re2._Anchor.UNANCHORED
_NO_MATCH: Final = re2._NULL_SPAN
MAX_BOUND: Final = 255  # ARE's DUPMAX
MAX_LENGTH: Final = 4096

# The white-space class of PostgreSQL's regex under the C.UTF-8 ctype (iswspace), exactly.
_SPACE: Final = (
    r"\t\n\x{b}\x{c}\r \x{1680}\x{2000}-\x{2006}\x{2008}-\x{200a}\x{2028}\x{2029}\x{205f}\x{3000}"
)
# Decimal digits of other scripts than ASCII: glibc counts them as letters, not digits.
_OTHER_DIGITS: Final = "".join(
    f"\\x{{{start:x}}}-\\x{{{start + 9:x}}}"
    for start in range(0x80, 0x20000, 1)
    if unicodedata.category(chr(start)) == "Nd" and unicodedata.digit(chr(start)) == 0
)
# Class contents (without brackets) of the ARE classes, as RE2 Unicode categories.
_CLASSES: Final = {
    "alpha": r"\p{L}\p{Nl}\p{Mc}" + _OTHER_DIGITS,
    "alnum": r"\p{L}\p{Nl}\p{Nd}\p{Mc}",
    "digit": "0-9",
    "upper": r"\p{Lu}\p{Lt}",
    "lower": r"\p{Ll}",
    "space": _SPACE,
    "blank": r" \t",
    "xdigit": "0-9A-Fa-f",
    "cntrl": r"\x{0}-\x{1f}\x{7f}-\x{9f}",
}
_PERL: Final = {"d": _CLASSES["digit"], "s": _SPACE, "w": _CLASSES["alnum"] + "_"}
_SIMPLE_ESCAPES: Final = {
    "a": 0x07,
    "b": 0x08,
    "B": 0x5C,
    "e": 0x1B,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
}
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_OPTIONS: Final = frozenset("cistq")


class Pattern:
    """A compiled pattern: ``search(text)`` is true if it matches anywhere (as ``~`` does).

    It calls RE2's C++ ``Match`` directly (``re2._re2``, the extension behind google-re2's
    wrapper, pinned in pyproject.toml): the wrapper's ``search`` spends ~4 µs per call on
    offset bookkeeping and match objects that a yes/no answer does not need (0.8 µs).
    """

    __slots__ = ("_regex", "source")

    def __init__(self, source: str, regex: Any) -> None:
        self.source = source
        self._regex = regex

    def search(self, text: str) -> bool:
        try:
            encoded = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: no PostgreSQL text holds one
            return False
        return bool(self._regex.Match(_UNANCHORED, encoded, 0, len(encoded))[0] != _NO_MATCH)


def check_pattern(pattern: str, what: str = "regular expression") -> None:
    """Raise BadRequestData (naming ``what``) unless ``pattern`` means the same in process."""
    compile_pattern(pattern, what)


def compile_pattern(pattern: str, what: str = "regular expression") -> Pattern:
    """The RE2 form of an ARE pattern; BadRequestData for what ``check_pattern`` refuses."""
    if not pattern:
        raise BadRequestData(f"{what}: empty regular expression")
    if len(pattern) > MAX_LENGTH:
        raise BadRequestData(f"{what}: longer than {MAX_LENGTH} characters")
    translated, case_sensitive, literal = _Translator(pattern, what).translate()
    options = re2.Options()
    options.dot_nl = True
    options.never_capture = True
    options.log_errors = False
    options.case_sensitive = case_sensitive
    options.literal = literal
    regex = _re2.RE2(translated.encode(), options)
    if not regex.ok():
        why = regex.error()
        raise BadRequestData(f"{what}: {pattern!r} cannot be evaluated here ({why})")
    return Pattern(pattern, regex)


@dataclass
class _Translator:
    s: str
    what: str
    i: int = 0
    case_sensitive: bool = True

    def refuse(self, why: str) -> BadRequestData:
        return BadRequestData(
            f"{self.what}: {self.s!r} is not supported: {why} (at position {self.i + 1})"
        )

    def translate(self) -> tuple[str, bool, bool]:
        case_sensitive, literal = True, False
        if self.s.startswith("***="):
            return self.s[4:], True, True
        if self.s.startswith("***:"):
            self.i = 4
        if self.s.startswith("(?", self.i) and self.i + 2 < len(self.s):
            end = self.s.find(")", self.i)
            flags = self.s[self.i + 2 : end] if end > 0 else ""
            if end > 0 and flags.isalpha():
                for flag in flags:
                    if flag not in _OPTIONS:
                        raise self.refuse(f"the embedded option {flag!r}")
                    case_sensitive = {"i": False, "c": True}.get(flag, case_sensitive)
                    self.case_sensitive = case_sensitive
                    literal = literal or flag == "q"
                self.i = end + 1
        if literal:
            return self.s[self.i :], case_sensitive, True
        out: list[str] = []
        while self.i < len(self.s):
            out.append(self.atom())
        return "".join(out), case_sensitive, False

    def atom(self) -> str:
        c = self.s[self.i]
        if c == "\\":
            return self.escape(in_brackets=False)
        if c == "[":
            return self.brackets()
        if c == "(":
            if self.s.startswith("(?", self.i):
                if not self.s.startswith("(?:", self.i):
                    raise self.refuse("lookaround, named groups and options after the start")
                self.i += 3
                return "(?:"
            self.i += 1
            return "("
        if c in "*+?":
            self.i += 1
            return c + self.lazy()
        if c == "{":
            return self.bound()
        self.i += 1
        if c in ").|^$":
            return c
        return _literal(c)

    def lazy(self) -> str:
        """A quantifier's optional ``?`` (non-greedy); anything stacked after it is refused."""
        suffix = ""
        if self.s.startswith("?", self.i):
            self.i += 1
            suffix = "?"
        if self.i < len(self.s) and self.s[self.i] in "*+?{":
            if self.s[self.i] != "{" or _is_bound(self.s, self.i):
                raise self.refuse("a quantifier cannot follow a quantifier")
        return suffix

    def bound(self) -> str:
        end = self.s.find("}", self.i)
        if not _is_bound(self.s, self.i):
            raise self.refuse("'{' that does not start a bound {m}, {m,} or {m,n}")
        body = self.s[self.i + 1 : end]
        numbers = [int(n) for n in body.split(",") if n]
        if any(n > MAX_BOUND for n in numbers) or (len(numbers) == 2 and numbers[0] > numbers[1]):
            raise self.refuse(f"bounds are 0 to {MAX_BOUND}, the first not above the second")
        self.i = end + 1
        return "{" + body + "}" + self.lazy()

    def escape(self, *, in_brackets: bool) -> str:
        if self.i + 1 >= len(self.s):
            raise self.refuse("a trailing backslash")
        c = self.s[self.i + 1]
        self.i += 2
        if c in _PERL:
            return _PERL[c] if in_brackets else f"[{_PERL[c]}]"
        if c in "DSW":
            if in_brackets:
                raise self.refuse(f"\\{c} inside brackets")
            return f"[^{_PERL[c.lower()]}]"
        if c in _SIMPLE_ESCAPES:
            return _char(_SIMPLE_ESCAPES[c])
        if c == "c" and self.i < len(self.s):
            self.i += 1
            return _char(ord(self.s[self.i - 1]) & 0x1F)
        if c in "uUx":
            return _char(self.hex_digits({"u": 4, "U": 8, "x": 0}[c]))
        if not in_brackets and c in "AZ":
            return "\\A" if c == "A" else "\\z"
        if c.isalnum():
            raise self.refuse(f"the escape \\{c}")
        return _literal(c)

    def hex_digits(self, exactly: int) -> int:
        j = self.i
        while j < len(self.s) and self.s[j] in _HEX and (not exactly or j - self.i < exactly):
            j += 1
        if j == self.i or (exactly and j - self.i != exactly):
            raise self.refuse("a malformed hexadecimal escape")
        code = int(self.s[self.i : j], 16)
        self.i = j
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise self.refuse("an escape beyond Unicode")
        return code

    def brackets(self) -> str:
        self.i += 1
        out = ["["]
        if self.s.startswith("^", self.i):
            out.append("^")
            self.i += 1
        items = 0  # a ']' or '-' first in the brackets is a literal
        while True:
            if self.i >= len(self.s):
                raise self.refuse("an unterminated bracket expression")
            c = self.s[self.i]
            if c == "]" and items:
                self.i += 1
                out.append("]")
                return "".join(out)
            if c == "[" and self.s.startswith(("[:", "[.", "[="), self.i):
                out.append(self.bracket_class())
            elif c == "\\":
                out.append(self.escape(in_brackets=True))
            elif c == "-" and items and not self.s.startswith("-]", self.i):
                self.i += 1
                out.append("-")
            else:
                self.i += 1
                out.append(_char(ord(c)))
            items += 1

    def bracket_class(self) -> str:
        kind = self.s[self.i + 1]
        if kind != ":":
            raise self.refuse("collating elements and equivalence classes")
        end = self.s.find(":]", self.i + 2)
        name = self.s[self.i + 2 : end] if end > 0 else ""
        if name not in _CLASSES:
            raise self.refuse(f"the character class {name!r}")
        self.i = end + 2
        if not self.case_sensitive and name in ("upper", "lower"):
            name = "alpha"  # as in PostgreSQL: either case is any letter then
        return _CLASSES[name]


def _is_bound(s: str, i: int) -> bool:
    """``{m}``, ``{m,}`` or ``{m,n}`` at ``i``."""
    end = s.find("}", i)
    body = s[i + 1 : end] if end > 0 else ""
    low, _, high = body.partition(",")
    return body.isascii() and low.isdigit() and (not high or high.isdigit())


def _char(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _literal(c: str) -> str:
    return _char(ord(c)) if not c.isalnum() else c
