"""Parser of the NGSI-LD Entity Type Selection Language (GS CIM 009 v1.9.1 §4.17) → ``TypeExpr``.

Pure, no I/O. ``|`` or ``,`` is OR, ``;`` is AND inside parentheses: ``(Home;Vehicle)|Motorhome``
(a bare ``A;B`` is accepted too, AND binding tighter). A type is a short name or a URI; URIs
that contain ``,;|()`` cannot be written here (the spec recommends short names). Syntax errors
raise ``BadRequestData`` naming the 1-based position.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from city_os.ngsild.entity import TermExpander, expand_type_name
from city_os.ngsild.query.ast import TypeAnd, TypeExpr, TypeName, TypeOr
from city_os.ngsild.query.selection import SelectionParser

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


def type_alternatives(expr: TypeExpr, terms: TermExpander) -> list[list[str]]:
    """A type selection as alternatives of IRIs that must all be present (its stored form)."""
    terms_of = expr.terms if not isinstance(expr, TypeName | TypeAnd) else (expr,)
    out: list[list[str]] = []
    for term in terms_of:
        names = term.names if isinstance(term, TypeAnd) else (term,)
        out.append(list(dict.fromkeys(expand_type_name(terms, n.name) for n in names)))
    return out


def type_text(alternatives: list[list[str]], compact: Callable[[str], str]) -> str:
    """The type selection text of stored alternatives, with names compacted."""
    parts = []
    for group in alternatives:
        names = [compact(iri) for iri in group]
        parts.append(names[0] if len(names) == 1 else "(" + ";".join(names) + ")")
    return "|".join(parts)


class _TypeParser(SelectionParser[TypeName, TypeAnd, TypeOr]):
    label = "type"

    def atom(self) -> TypeName:
        return self.name()

    def conjoin(self, atoms: list[TypeName]) -> TypeAnd:
        return TypeAnd(tuple(atoms))

    def disjoin(self, terms: list[TypeName | TypeAnd]) -> TypeOr:
        return TypeOr(tuple(terms))

    def name(self) -> TypeName:
        m = _TYPE.match(self.s, self.i)
        if m is None:
            raise self.error(f"expected an entity type, found {self.found()}")
        self.i = m.end()
        return TypeName(m.group())
