"""Parser of the NGSI-LD Scope Query Language (GS CIM 009 v1.9.1 §4.19) → ``ScopeExpr``.

Pure, no I/O. ``|`` or ``,`` is OR; ``;`` is AND and binds tighter (the spec asks for parentheses
around a conjunction, ``(/a;/b)``; we also accept it bare). ``+`` matches exactly one level,
a trailing ``/#`` the scope itself and everything below, ``/#`` alone any non-empty scope.
Syntax errors raise ``BadRequestData`` naming the 1-based position.
"""

from __future__ import annotations

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import ScopeAnd, ScopeExpr, ScopeMatch, ScopeOr
from city_os.ngsild.query.q import is_name
from city_os.ngsild.query.selection import SelectionParser


def parse_scopeq(text: str) -> ScopeExpr:
    """Parse a ``scopeQ``; raise ``BadRequestData`` on any syntax error."""
    return _ScopeParser(text).parse()


def parse_scope(text: str) -> tuple[str, ...]:
    """Validate one concrete scope of an entity (``/a/b``, no wildcards) → its levels."""
    levels = text.split("/")
    if len(levels) < 2 or levels[0] != "" or not all(is_name(level) for level in levels[1:]):
        raise BadRequestData(f"invalid scope {text!r}: expected /Level/Level...")
    return tuple(levels[1:])


class _ScopeParser(SelectionParser[ScopeMatch, ScopeAnd, ScopeOr]):
    label = "scopeQ"

    def atom(self) -> ScopeMatch:
        return self.match()

    def conjoin(self, atoms: list[ScopeMatch]) -> ScopeAnd:
        return ScopeAnd(tuple(atoms))

    def disjoin(self, terms: list[ScopeMatch | ScopeAnd]) -> ScopeOr:
        return ScopeOr(tuple(terms))

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
