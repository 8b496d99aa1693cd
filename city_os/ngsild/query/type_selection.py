"""Parser of the NGSI-LD Entity Type Selection Language (GS CIM 009 v1.9.1 §4.17) → ``TypeExpr``.

Pure, no I/O. ``|`` or ``,`` is OR, ``;`` is AND inside parentheses: ``(Home;Vehicle)|Motorhome``
(a bare ``A;B`` is accepted too, AND binding tighter). A type is a short name or a URI; URIs
that contain ``,;|()`` cannot be written here (the spec recommends short names). Syntax errors
raise ``BadRequestData`` naming the 1-based position.
"""

from __future__ import annotations

import re
from typing import Final

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import TypeAnd, TypeExpr, TypeName, TypeOr
from city_os.ngsild.query.q import check_text

MAX_LENGTH: Final = 4096
_TYPE = re.compile(r"[^\s,;|()\"<>{}\\^`]+")


def parse_type_selection(text: str) -> TypeExpr:
    """Parse the ``type`` parameter; raise ``BadRequestData`` on any syntax error."""
    return _TypeParser(text).parse()


def type_names(expr: TypeExpr) -> tuple[str, ...]:
    """Every type name mentioned, in order (e.g. to expand them all at once)."""
    if isinstance(expr, TypeName):
        return (expr.name,)
    if isinstance(expr, TypeAnd):
        return tuple(n.name for n in expr.names)
    return tuple(name for term in expr.terms for name in type_names(term))


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def error(self, message: str) -> BadRequestData:
        return BadRequestData(f"type: {message} at position {self.i + 1}")

    def found(self) -> str:
        return "end of input" if self.i >= len(self.s) else repr(self.s[self.i])

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def parse(self) -> TypeExpr:
        if not self.s:
            raise BadRequestData("type: empty type selection")
        if len(self.s) > MAX_LENGTH:
            raise BadRequestData(f"type: longer than {MAX_LENGTH} characters")
        check_text(self.s, "type")
        terms = [self.conjunction()]
        while self.peek() in ("|", ","):
            self.i += 1
            terms.append(self.conjunction())
        if self.i < len(self.s):
            raise self.error(f"unexpected {self.found()}")
        return terms[0] if len(terms) == 1 else TypeOr(tuple(terms))

    def conjunction(self) -> TypeName | TypeAnd:
        names = self.primary()
        while self.peek() == ";":
            self.i += 1
            names.extend(self.primary())
        return names[0] if len(names) == 1 else TypeAnd(tuple(names))

    def primary(self) -> list[TypeName]:
        if self.peek() != "(":
            return [self.name()]
        self.i += 1
        names = [self.name()]
        while self.peek() == ";":
            self.i += 1
            names.append(self.name())
        if self.peek() != ")":
            raise self.error(f"expected ')', found {self.found()}")
        self.i += 1
        return names

    def name(self) -> TypeName:
        m = _TYPE.match(self.s, self.i)
        if m is None:
            raise self.error(f"expected an entity type, found {self.found()}")
        self.i = m.end()
        return TypeName(m.group())
