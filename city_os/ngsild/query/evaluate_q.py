"""In-process evaluation of ``q`` (§4.9) with exactly the SQL engine's meaning.

Layer: ngsild/ (pure, no I/O). The SQL engine turns each q term into a PostgreSQL jsonpath in
lax mode (store/postgres/query_sql.py); this module compiles the same AST, along the same paths
(targets.py), into nested closures that walk a stored entity the way lax jsonpath does:

* ``[*]`` gives the elements of an array, or the item itself; a member step (``."value"``,
  ``.*``) on an array steps into each element, one level deep; a filter (``? (…)``) tests each
  element of an array, one level deep, and a comparison's left side unwraps one level more, so a
  term matches if any instance, any array element (two levels) matches;
* comparisons are typed: numbers against numbers (exactly, as ``numeric``), strings against
  strings in code point order, booleans against booleans, anything else is no match;
  date/time literals against the readings of stored text (datetimes.py);
* ``!=`` means: the target exists and none of its elements equals the value; ``!~=`` holds for
  strings that do not match; a missing attribute matches neither ``==`` nor ``!=``.

Linked paths (``rel{attr}==v``) follow the Relationship's objects to the entities a caller
supplies (``Lookup``); expired ones are invisible, as in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from city_os.ngsild.entity import parse_datetime
from city_os.ngsild.query import datetimes, lax, targets
from city_os.ngsild.query.ast import (
    And,
    Boolean,
    Comparison,
    Exists,
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
from city_os.ngsild.query.entity_selection import Expand
from city_os.ngsild.query.lax import Predicate
from city_os.ngsild.query.regex import compile_pattern
from city_os.ngsild.representation import EntityRecord

Lookup = Callable[[str], EntityRecord | None]
Order = Callable[[int], bool]  # on the sign of a comparison


class Context:
    """What one evaluation needs besides the entity: linked entities, and the time once read."""

    __slots__ = ("_now", "linked")

    def __init__(self, linked: Lookup | None, now: datetime | None) -> None:
        self.linked = linked
        self._now = now

    @property
    def now(self) -> datetime:
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    def live(self, record: EntityRecord) -> bool:
        """Transient entities past ``expiresAt`` are invisible (store: ``_LIVE``)."""
        return record.expires_at is None or parse_datetime(record.expires_at) > self.now


Test = Callable[[EntityRecord, Context], bool]

_ORDERS: Final[dict[str, Order]] = {
    "==": lambda c: c == 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def compile_q(expr: QExpr, expand: Expand) -> QTerm:
    """``expr`` compiled once: names expanded, literals and patterns prepared."""
    if isinstance(expr, And | Or):
        return _Logic(isinstance(expr, And), tuple(compile_q(t, expand) for t in expr.terms))
    if expr.path.link is not None:
        return _Linked(expr, expand)
    if isinstance(expr, Exists) and len(expr.path.names) == 1 and not expr.path.keys:
        return _HasAttribute(expand(expr.path.names[0]), expr.negated)
    return _PathTerm(expr, expand)


class QTerm:
    """A compiled q expression: ``test`` on an entity, and the linked ids it would follow."""

    def test(self, record: EntityRecord, ctx: Context) -> bool:
        raise NotImplementedError

    def linked_ids(self, record: EntityRecord, linked: Lookup | None, out: set[str]) -> None:
        """Add the ids of the entities linked paths follow from ``record`` (deeper levels
        through entities ``linked`` already knows)."""


class _Logic(QTerm):
    __slots__ = ("conjunction", "terms")

    def __init__(self, conjunction: bool, terms: tuple[QTerm, ...]) -> None:
        self.conjunction = conjunction
        self.terms = terms

    def test(self, record: EntityRecord, ctx: Context) -> bool:
        if self.conjunction:
            return all(t.test(record, ctx) for t in self.terms)
        return any(t.test(record, ctx) for t in self.terms)

    def linked_ids(self, record: EntityRecord, linked: Lookup | None, out: set[str]) -> None:
        for term in self.terms:
            term.linked_ids(record, linked, out)


class _HasAttribute(QTerm):
    """``attr`` / ``!attr``: the key exists (``attrs ? IRI``)."""

    __slots__ = ("iri", "negated")

    def __init__(self, iri: str, negated: bool) -> None:
        self.iri = iri
        self.negated = negated

    def test(self, record: EntityRecord, ctx: Context) -> bool:
        return (self.iri in record.attrs) is not self.negated


class _PathTerm(QTerm):
    """One term on a path: ``$.attr[*].sub… ? (exists(target ? (predicate)) || …)``."""

    __slots__ = ("condition", "iri", "negated", "steps")

    def __init__(self, term: Comparison | Pattern | Exists, expand: Expand) -> None:
        (self.iri, *steps), member = targets.prefix(term.path, expand)
        self.steps = tuple(steps)
        self.negated = isinstance(term, Exists) and term.negated
        self.condition = _condition(term, member)

    def test(self, record: EntityRecord, ctx: Context) -> bool:
        instances = record.attrs.get(self.iri)
        if instances is None:
            return self.negated
        items = lax.elements(instances)
        for step in self.steps:
            items = lax.step_into(items, step)
        condition = self.condition
        for item in items:
            if isinstance(item, list):
                if any(condition(e) for e in item):
                    return not self.negated
            elif condition(item):
                return not self.negated
        return self.negated


class _Linked(QTerm):
    """``rel{[Types:]path}…``: some entity the Relationship names (of those types) passes the
    rest of the term; ``!rel{path}``: none has ``path``."""

    __slots__ = ("inner", "negated", "rel", "types")

    def __init__(self, term: Comparison | Pattern | Exists, expand: Expand) -> None:
        link = term.path.link
        assert link is not None
        self.rel = expand(term.path.names[0])
        # The SQL engine expands these type names with the attribute expander: mirrored.
        self.types = frozenset(expand(t) for t in link.types)
        self.negated = isinstance(term, Exists) and term.negated
        inner: QExpr
        if isinstance(term, Exists):
            inner = Exists(link.path)
        elif isinstance(term, Pattern):
            inner = Pattern(link.path, term.regex, term.negated)
        else:
            inner = Comparison(link.path, term.op, term.value)
        self.inner = compile_q(inner, expand)

    def objects(self, record: EntityRecord) -> list[str]:
        """``$.rel[*]."object"[*]``, the strings among them (``#>> '{}'`` against ids)."""
        found = lax.elements(lax.step_into(record.attrs.get(self.rel, ()), "object"), True)
        return [x for x in found if isinstance(x, str)]

    def test(self, record: EntityRecord, ctx: Context) -> bool:
        if ctx.linked is None:
            raise ValueError("q follows relationships: the evaluation needs linked entities")
        for target in self.objects(record):
            other = ctx.linked(target)
            if other is None or not ctx.live(other):
                continue
            if self.types and self.types.isdisjoint(other.types):
                continue
            if self.inner.test(other, ctx):
                return not self.negated
        return self.negated

    def linked_ids(self, record: EntityRecord, linked: Lookup | None, out: set[str]) -> None:
        for target in self.objects(record):
            out.add(target)
            other = linked(target) if linked is not None else None
            if other is not None:
                self.inner.linked_ids(other, linked, out)


# --- conditions and predicates -------------------------------------------------------------------


def _condition(term: Comparison | Pattern | Exists, member: bool) -> Predicate:
    """The filter condition on what the prefix reaches: an OR over the term's targets."""
    if isinstance(term, Exists):
        found = targets.targets(term.path, member, targets.EQUALITY)
        return lambda item: any(lax.walk(item, t) for t in found)
    if isinstance(term, Pattern):
        regex = compile_pattern(term.regex, "q")
        found = targets.targets(term.path, member, targets.ORDER)
        predicate = _unlike(regex.search) if term.negated else _like(regex.search)
        return lambda item: any(lax.any_element(lax.walk(item, t), predicate) for t in found)
    found = targets.comparison_targets(term.path, member, term.op, term.value)
    if term.op == "!=":
        equal = _operand("==", term.value)

        def unequal(item: Any) -> bool:
            for target in found:
                values = lax.walk(item, target)
                if values and not lax.any_element(values, equal):
                    return True
            return False

        return unequal
    predicate = _operand(term.op, term.value)
    return lambda item: any(lax.any_element(lax.walk(item, t), predicate) for t in found)


def _like(search: Callable[[str], bool]) -> Predicate:
    """``@ like_regex r``: any string among the element (and its elements) matches."""
    return lambda e: any(isinstance(v, str) and search(v) for v in lax.unwrap(e))


def _unlike(search: Callable[[str], bool]) -> Predicate:
    """``@.type() == "string" && !(@ like_regex r)``."""
    return lambda e: isinstance(e, str) and not search(e)


def _operand(op: str, value: Value | Range | ValueList) -> Predicate:
    if isinstance(value, Range):
        low, high = _predicate(">=", value.low), _predicate("<=", value.high)
        return lambda e: low(e) and high(e)
    if isinstance(value, ValueList):
        items = tuple(_predicate("==", item) for item in value.items)
        return lambda e: any(p(e) for p in items)
    return _predicate(op, value)


def _predicate(op: str, value: Value) -> Predicate:
    """``@ op literal`` on one element: typed, any of its (unwrapped) values."""
    order = _ORDERS[op]
    if isinstance(value, Temporal):
        return _temporal(order, value)
    compare = _comparator(value)

    def predicate(element: Any) -> bool:
        for v in lax.unwrap(element):
            sign = compare(v)
            if sign is not None and order(sign):
                return True
        return False

    return predicate


def _comparator(value: Number | Text | Uri | Boolean) -> Callable[[Any], int | None]:
    if isinstance(value, Number):
        return _number(value.value)
    if isinstance(value, Boolean):
        flag = value.value
        return lambda v: (v > flag) - (v < flag) if isinstance(v, bool) else None
    text = value.value
    return lambda v: (v > text) - (v < text) if isinstance(v, str) else None


def _number(literal: Decimal) -> Callable[[Any], int | None]:
    """Numbers compare as PostgreSQL ``numeric``: a stored float is the decimal it was written
    as (its shortest repr, which is what jsonb holds), an int is exact. When the literal is
    itself some float's shortest repr, comparing floats gives the same order, faster."""
    as_float = float(literal)
    exact_float = Decimal(repr(as_float)) == literal

    def compare(v: Any) -> int | None:
        if isinstance(v, bool):
            return None
        if isinstance(v, float):
            if exact_float:
                return (v > as_float) - (v < as_float)
            d = Decimal(repr(v))
            return (d > literal) - (d < literal)
        if isinstance(v, int):
            return (v > literal) - (v < literal)
        return None

    return compare


def _temporal(order: Order, value: Temporal) -> Predicate:
    """``@.datetime(T1) op L || @.datetime(T2) op L || …``: each reading an alternative; a
    reading of an array needs every element to read (else that alternative is unknown)."""
    instant = datetimes.literal(value)
    readers = datetimes.READERS[value.kind]

    def predicate(element: Any) -> bool:
        texts = element if isinstance(element, list) else [element]
        for read in readers:
            for text in texts:
                if not isinstance(text, str) or read(text) is None:
                    break
            else:
                for text in texts:
                    reading = read(text)
                    assert reading is not None
                    sign = datetimes.compare(reading, instant)
                    if sign is not None and order(sign):
                        return True
        return False

    return predicate
