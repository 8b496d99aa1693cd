"""Which entities a stored Subscription selects: its ``Selection`` (§5.2.12).

Layer: ngsild/ (pure). Entity selectors (their types already IRIs), ``q``, ``geoQ`` and
``scopeQ`` as the query engine and the in-process evaluator take them, with the ``Names`` of the
subscription's own @context (its q/scopeQ terms are expanded with it). ``check_selection``
compiles the selection once, so creating or updating a subscription whose patterns the
in-process evaluator cannot run (ngsild/query/regex.py) is a 400, not a notifier that cannot
match it.
"""

from __future__ import annotations

from city_os.errors import BadRequestData
from city_os.ngsild.entity import TermExpander, expand_attr_name
from city_os.ngsild.query.ast import TypeAnd, TypeExpr, TypeName, TypeOr
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.evaluate import CompiledSelection, compile_selection
from city_os.ngsild.query.geo import geoq_from_json
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.subscription import Doc, expression


def _type_expr(alternatives: list[list[str]]) -> TypeExpr:
    terms: list[TypeName | TypeAnd] = []
    for group in alternatives:
        names = tuple(TypeName(iri) for iri in group)
        terms.append(names[0] if len(names) == 1 else TypeAnd(names))
    return terms[0] if len(terms) == 1 else TypeOr(tuple(terms))


def names_of(terms: TermExpander) -> Names:
    return Names(type=terms.expand_type, attr=lambda t: expand_attr_name(terms, t))


def selection_of(doc: Doc) -> Selection:
    """The subscription's selection (types are IRIs already; q/scopeQ percent-decoded)."""
    selectors = tuple(
        EntitySelector(
            types=_type_expr(s["type"]),
            ids=(s["id"],) if "id" in s else (),
            id_pattern=s.get("idPattern"),
        )
        for s in doc.get("entities", ())
    )
    geo = doc.get("geoQ")
    return Selection(
        selectors=selectors,
        q=parse_q(expression(doc["q"])) if "q" in doc else None,
        geo=geoq_from_json(geo) if geo is not None else None,
        scope=parse_scopeq(expression(doc["scopeQ"])) if "scopeQ" in doc else None,
    )


def check_selection(doc: Doc, terms: TermExpander) -> CompiledSelection:
    """The compiled selection; BadRequestData naming the member for what cannot be evaluated."""
    try:
        return compile_selection(selection_of(doc), names_of(terms))
    except BadRequestData as exc:
        if exc.detail.startswith("idPattern"):
            raise BadRequestData(f"entities: {exc.detail}") from None
        raise
