"""Parser of the NGSI-LD Scope Query Language (GS CIM 009 v1.9.1 §4.19) → ``ScopeExpr``.

Pure, no I/O. ``|`` or ``,`` is OR; ``;`` is AND and binds tighter (the spec asks for parentheses
around a conjunction, ``(/a;/b)``; we also accept it bare). ``+`` matches exactly one level,
a trailing ``/#`` the scope itself and everything below, ``/#`` alone any non-empty scope.
Syntax errors raise ``BadRequestData`` naming the 1-based position.
"""

from __future__ import annotations

from typing import Final

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import ScopeAnd, ScopeExpr, ScopeMatch, ScopeOr
from city_os.ngsild.query.q import check_text, is_name

MAX_LENGTH: Final = 4096


def parse_scopeq(text: str) -> ScopeExpr:
    """Parse a ``scopeQ``; raise ``BadRequestData`` on any syntax error."""
    return _ScopeParser(text).parse()


def parse_scope(text: str) -> tuple[str, ...]:
    """Validate one concrete scope of an entity (``/a/b``, no wildcards) → its levels."""
    levels = text.split("/")
    if len(levels) < 2 or levels[0] != "" or not all(is_name(level) for level in levels[1:]):
        raise BadRequestData(f"invalid scope {text!r}: expected /Level/Level...")
    return tuple(levels[1:])


class _ScopeParser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, message: str) -> BadRequestData:
        return BadRequestData(f"scopeQ: {message} at position {self.i + 1}")

    def found(self) -> str:
        return "end of input" if self.i >= len(self.s) else repr(self.s[self.i])

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> ScopeExpr:
        if not self.s:
            raise BadRequestData("scopeQ: empty scope query")
        if len(self.s) > MAX_LENGTH:
            raise BadRequestData(f"scopeQ: longer than {MAX_LENGTH} characters")
        check_text(self.s, "scopeQ")
        terms = [self.conjunction()]
        while self.peek() in ("|", ","):
            self.i += 1
            terms.append(self.conjunction())
        if self.i < len(self.s):
            raise self.error(f"unexpected {self.found()}")
        return terms[0] if len(terms) == 1 else ScopeOr(tuple(terms))

    def conjunction(self) -> ScopeMatch | ScopeAnd:
        matches = self.primary()
        while self.peek() == ";":
            self.i += 1
            matches.extend(self.primary())
        return matches[0] if len(matches) == 1 else ScopeAnd(tuple(matches))

    def primary(self) -> list[ScopeMatch]:
        if self.peek() != "(":
            return [self.match()]
        self.i += 1
        matches = [self.match()]
        while self.peek() == ";":
            self.i += 1
            matches.append(self.match())
        if self.peek() != ")":
            raise self.error(f"expected ')', found {self.found()}")
        self.i += 1
        return matches

    def match(self) -> ScopeMatch:
        if self.peek() != "/":
            raise self.error(f"expected '/', found {self.found()}")
        levels: list[str] = []
        while self.peek() == "/":
            self.i += 1
            if self.peek() == "#":
                self.i += 1
                return ScopeMatch(tuple(levels), descendants=True)
            levels.append(self.level())
        return ScopeMatch(tuple(levels))

    def level(self) -> str:
        if self.peek() == "+":
            self.i += 1
            return "+"
        j = self.i
        while j < len(self.s) and self.s[j] not in "/|,;()#+":
            j += 1
        level = self.s[self.i : j]
        if not is_name(level):
            raise self.error(f"expected a scope level, found {level or self.found()!r}")
        self.i = j
        return level
