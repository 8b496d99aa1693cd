"""Parser of the projection lists ``pick`` and ``omit`` (GS CIM 009 v1.9.1 §4.21) → a tree.

Pure, no I/O. ``,`` or ``|`` separates items; an item may address the entity linked through a
Relationship with a nested list in braces (§4.5.23): ``id,locatedAt{id,name,isInCountry{id}}``.
Returns ``((name, nested | None), ...)`` with the names as written (terms, not yet expanded);
``project`` turns the lists into the ``RenderOptions`` of an output. Syntax errors raise
``BadRequestData`` naming the 1-based position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from city_os.errors import BadRequestData
from city_os.ngsild.representation import RenderOptions

Projection = tuple[tuple[str, "Projection | None"], ...]
# Entity members a projection names as they are (everything else is an attribute term).
PROJECTED_MEMBERS = frozenset({"id", "type", "scope", "expiresAt"})

_SEPARATORS = ",|"
_SPECIAL = "{}" + _SEPARATORS


def parse_projection(text: str, name: str = "projection") -> Projection:
    """Parse a ``pick``/``omit`` value; raise ``BadRequestData`` on any syntax error."""
    items, end = _items(text, 0, name, nested=False)
    if end != len(text):  # pragma: no cover - _items consumes everything at top level
        raise BadRequestData(f"{name}: unexpected {text[end]!r} at position {end + 1}")
    return items


def _items(text: str, i: int, name: str, *, nested: bool) -> tuple[Projection, int]:
    out: list[tuple[str, Projection | None]] = []
    while True:
        start = i
        while i < len(text) and text[i] not in _SPECIAL:
            i += 1
        term = text[start:i].strip()
        if not term:
            found = repr(text[i]) if i < len(text) else "end of input"
            raise BadRequestData(f"{name}: expected a name, found {found} at position {i + 1}")
        sub: Projection | None = None
        if i < len(text) and text[i] == "{":
            sub, i = _items(text, i + 1, name, nested=True)
            if i >= len(text) or text[i] != "}":
                raise BadRequestData(f"{name}: expected '}}' at position {i + 1}")
            i += 1
        out.append((term, sub))
        if i >= len(text):
            if nested:
                raise BadRequestData(f"{name}: expected '}}', found end of input")
            return tuple(out), i
        if text[i] == "}":
            if not nested:
                raise BadRequestData(f"{name}: unexpected '}}' at position {i + 1}")
            return tuple(out), i
        if text[i] not in _SEPARATORS:
            raise BadRequestData(f"{name}: unexpected {text[i]!r} at position {i + 1}")
        i += 1


def project(
    opts: RenderOptions, pick: str | None, omit: str | None, expand: Callable[[str], str]
) -> RenderOptions:
    """``opts`` with the ``pick`` and/or ``omit`` lists applied; ``expand`` gives the IRI of an
    attribute term."""
    if pick is not None:
        opts = _project(opts, parse_projection(pick, "pick"), expand, picking=True)
    if omit is not None:
        opts = _project(opts, parse_projection(omit, "omit"), expand, picking=False)
    return opts


def _project(
    opts: RenderOptions, tree: Projection, expand: Callable[[str], str], *, picking: bool
) -> RenderOptions:
    def name(term: str) -> str:
        return term if term in PROJECTED_MEMBERS else expand(term)

    # Linked entities start from the request's output options, without its projections.
    base = replace(opts, attrs=None, pick=None, omit=None, linked=())
    linked = opts.linked + tuple(
        (name(term), _project(base, sub, expand, picking=picking))
        for term, sub in tree
        if sub is not None
    )
    if picking:
        return replace(opts, pick=frozenset(name(t) for t, _ in tree), linked=linked)
    # omit=rel{a} omits inside the linked entity, not the Relationship itself
    names = frozenset(name(t) for t, sub in tree if sub is None)
    return replace(opts, omit=names or None, linked=linked)
