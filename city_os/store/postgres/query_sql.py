"""SQL for the NGSI-LD selection languages: AST (city_os.ngsild.query) → ``(fragment, args)``.

Store layer, pure (no I/O). Every fragment is a boolean condition on the entities table aliased
``e`` (docs/storage.md); every request value travels as a bound parameter (``$n``), never in
the SQL text. ``SqlParams`` hands out the placeholders, starting after the caller's own.

Strategy for ``q``: each query term becomes ``e.attrs @? $n::jsonpath``, one jsonpath per term
whose literals (attribute IRIs, strings, numbers, regexes) are embedded as escaped jsonpath
literals (``jsonpath_string``; numbers are the parser's validated JSON number text). Why:

* ``@?`` is served by the (``jsonb_ops``) GIN index on ``attrs`` for equality terms
  (checked with EXPLAIN: a Bitmap Index Scan even through ``exists(@.value ? (@ == 5))``,
  ``||`` alternatives and the ``languageMap.*`` wildcard, which ``jsonb_path_ops`` cannot
  serve), whereas ``jsonb_path_exists(attrs, path, vars)`` (values in ``vars``)
  and ``EXISTS (SELECT … jsonb_array_elements …)`` never use an index.
* ``like_regex`` only takes a literal pattern, so ``~=`` needs an embedded literal anyway.
* ``@?`` suppresses type/datetime errors: a stored value of another type, or a string that is
  no date, simply does not match — the spec's "different data types → not matching" — and
  bad stored data can never turn a query into a 500.
* One C-level evaluation per entity instead of set-returning subqueries.

The path is still a bound parameter, so SQL injection is impossible; jsonpath injection is
prevented by ``jsonpath_string`` (JSON-compatible escapes, fuzzed against PostgreSQL in the
tests). Lax mode gives the "any instance / any array element" semantics of §4.9 for free.
Plain existence (``q=attr``) uses ``e.attrs ? $n``.

Dates: PostgreSQL's ``.datetime()`` cannot read a trailing ``Z`` without a template, so the
literal is sent in a canonical form (UTC) and stored strings are parsed with explicit templates
(with and without fractional seconds), and date-times also without a template, which reads a
UTC offset (``+09:00``, as Japanese data is often written). Those become timestamptz and the
others timestamp, so temporal terms use ``jsonb_path_exists_tz`` (the session time zone, UTC,
relates the two). A Property value ``{"@type": "DateTime", "@value": …}``
is compared on ``@value``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from city_os.errors import BadRequestData, OperationNotSupported
from city_os.ngsild.query import targets
from city_os.ngsild.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Exists,
    Number,
    Or,
    Pattern,
    QExpr,
    Range,
    ScopeAnd,
    ScopeExpr,
    ScopeMatch,
    ScopeOr,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    Uri,
    Value,
    ValueList,
)
from city_os.ngsild.query.entity_selection import Expand
from city_os.store.postgres.query_values import values_condition

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")

_TEMPLATES: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    # kind: (templates for stored text, template of the canonical literal)
    "dateTime": (
        ('YYYY-MM-DD"T"HH24:MI:SS"Z"', 'YYYY-MM-DD"T"HH24:MI:SS.FF6"Z"'),
        'YYYY-MM-DD"T"HH24:MI:SS.FF6',
    ),
    "date": (("YYYY-MM-DD",), "YYYY-MM-DD"),
    "time": (('HH24:MI:SS"Z"', 'HH24:MI:SS.FF6"Z"'), "HH24:MI:SS.FF6"),
}


class SqlParams:
    """Accumulates bound arguments and hands out their ``$n`` placeholders.

    ``start`` is the number of the first placeholder: pass ``len(own_args) + 1`` to append
    these arguments after the caller's. Share one instance across several builders.
    """

    def __init__(self, start: int = 1) -> None:
        if start < 1:
            raise ValueError("placeholders start at $1")
        self._start = start
        self._args: list[Any] = []

    def add(self, value: Any) -> str:
        self._args.append(value)
        return f"${self._start + len(self._args) - 1}"

    @property
    def args(self) -> list[Any]:
        return self._args

    @property
    def next_index(self) -> int:
        return self._start + len(self._args)


def jsonpath_string(value: str) -> str:
    """``value`` as a PostgreSQL jsonpath string literal (double-quoted, escaped).

    Only ``\\"``, ``\\\\`` and ``\\uXXXX`` escapes are produced, so the literal is also valid
    JSON. NUL and lone surrogates cannot be represented in PostgreSQL text: ValueError.
    """
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code == 0 or 0xD800 <= code <= 0xDFFF:
            raise ValueError("NUL or lone surrogate cannot be a jsonpath string")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def sql_string(value: str) -> str:
    """``value`` as an SQL string literal, for the few places a value must be part of the SQL
    text rather than a bound parameter: expressions that have to match an index expression
    (the planner cannot match ``attrs -> $1``). An escape string (``E'…'``) with backslashes
    and quotes doubled means the same whatever standard_conforming_strings says; NUL cannot be
    in PostgreSQL text: ValueError."""
    if "\x00" in value:
        raise ValueError("NUL cannot be in an SQL string")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def check_identifier(name: str) -> str:
    """Table names are made by city-os, never by a request; refuse anything else."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


# --- q ------------------------------------------------------------------------------------------


def q_to_sql(
    expr: QExpr,
    expand: Expand,
    *,
    params: SqlParams | None = None,
    alias: str = "e",
    entities_table: str | None = None,
    numbers: frozenset[str] = frozenset(),
    values_table: str | None = None,
    entity_type: str | None = None,
    bind_values: bool = False,
) -> tuple[str, list[Any]]:
    """Condition for ``q``. ``expand`` maps a term to its IRI (attribute and sub-attribute
    names; keys inside ``[...]`` are not expanded). ``entities_table`` (``schema.entities``)
    is needed only for linked-entity paths (``rel{attr}==v``). ``numbers``: IRIs of the
    attributes with value indexes, whose number comparisons are written so that the indexes
    serve them (``_QBuilder.number_bound``). ``values_table`` (``schema.attr_values``): the
    terms it answers become probes of it (``query_values``), kept to the rows of
    ``entity_type`` (IRI) when that is known to be the only type of every entity ``alias``,
    with their values bound (``bind_values``) rather than written into the SQL text.

    Returns the fragment and ``params.args`` (all arguments so far, if ``params`` is shared).
    """
    params = params if params is not None else SqlParams()
    builder = _QBuilder(expand, params, entities_table, numbers)
    builder.values_table = check_identifier(values_table) if values_table else None
    alias = check_identifier(alias)
    builder.typed = (alias, entity_type) if entity_type is not None else None
    builder.bind_values = bind_values
    return builder.expr(expr, alias), params.args


# Order comparisons on an attribute with value indexes (store/postgres/indexes.py): the bound
# of the attribute's numbers that decides the comparison.
_NUMBER_BOUND: Final = {
    ">": "true",  # the largest number
    ">=": "true",
    "<": "false",  # the smallest
    "<=": "false",
}


class _QBuilder:
    def __init__(
        self,
        expand: Expand,
        params: SqlParams,
        entities_table: str | None,
        numbers: frozenset[str] = frozenset(),
    ) -> None:
        self.expand = expand
        self.params = params
        self.entities_table = entities_table
        self.numbers = numbers
        self.aliases = 0
        self.values_table: str | None = None
        self.typed: tuple[str, str] | None = None  # (alias, the one type of its entities)
        self.bind_values = False

    def expr(self, expr: QExpr, alias: str) -> str:
        if isinstance(expr, And):
            return "(" + " AND ".join(self.expr(t, alias) for t in expr.terms) + ")"
        if isinstance(expr, Or):
            return "(" + " OR ".join(self.expr(t, alias) for t in expr.terms) + ")"
        if expr.path.link is not None:
            return self.linked(expr, alias)
        if isinstance(expr, Exists):
            sql = self.exists(expr.path, alias)
            return f"NOT ({sql})" if expr.negated else sql
        if isinstance(expr, Pattern):
            return self.path_exists(self.pattern_path(expr), alias, indexable=False)
        bound = self.number_bound(expr, alias)
        if bound is None and self.values_table is not None:
            typed = self.typed[1] if self.typed and self.typed[0] == alias else None  # not linked
            bind = self.params.add if self.bind_values else None
            bound = values_condition(
                expr, self.expand, alias, self.values_table, sql_string, typed, bind
            )
        if bound is not None:
            return bound
        if targets.mentions_time(expr.value):
            # Stored date-times with a UTC offset parse to timestamptz, "Z" ones (by template)
            # to timestamp: only the _tz variant compares the two (sessions run in UTC); the
            # plain one raises an error instead, for a date/time anywhere in a value list.
            path = self.params.add(self.comparison_path(expr))
            return f"jsonb_path_exists_tz({alias}.attrs, {path}::jsonpath, '{{}}', true)"
        indexable = expr.op == "==" and not isinstance(expr.value, Range)
        return self.path_exists(self.comparison_path(expr), alias, indexable=indexable)

    def number_bound(self, term: Comparison, alias: str) -> str | None:
        """A number comparison on an attribute with value indexes, in the indexes' terms:
        ``a>n`` holds exactly when the largest number of ``a`` exceeds n (``a<n``: the
        smallest), which ``cityos.q_number_bound`` computes with the jsonpath's own reach
        (migration 0004). Ranges (``a==l..h``) are equality terms, which also reach
        Relationship objects: they keep the jsonpath."""
        path = term.path
        if len(path.names) != 1 or path.keys or path.link is not None:
            return None
        iri = self.expand(path.names[0])
        if iri not in self.numbers:
            return None
        target = f"{alias}.attrs -> {sql_string(iri)}"
        value = term.value
        if isinstance(value, Number) and term.op in _NUMBER_BOUND:
            number = self.params.add(value.value)
            largest = _NUMBER_BOUND[term.op]
            return f"cityos.q_number_bound({target}, {largest}) {term.op} {number}::numeric"
        return None

    def path_exists(self, jsonpath: str, alias: str, *, indexable: bool = True) -> str:
        """``@?`` where the GIN index can serve the path (equality); otherwise the silent
        ``jsonb_path_exists`` function, which means the same but which the planner estimates
        at a third of the rows instead of a handful: that estimate keeps it from walking the
        id index through most of the table to fill a page of a range query."""
        param = self.params.add(jsonpath)
        if indexable:
            return f"{alias}.attrs @? {param}::jsonpath"
        return f"jsonb_path_exists({alias}.attrs, {param}::jsonpath, '{{}}', true)"

    def linked(self, expr: Comparison | Pattern | Exists, alias: str) -> str:
        """Follow the Relationship to the entities it names and test the rest of the path."""
        link = expr.path.link
        assert link is not None
        if self.entities_table is None:
            raise OperationNotSupported("q: linked entity paths are not supported here")
        table = check_identifier(self.entities_table)
        self.aliases += 1
        inner = f"l{self.aliases}"
        rel = jsonpath_string(self.expand(expr.path.names[0]))
        objects = self.params.add(f'$.{rel}[*]."object"[*]')
        ids = f"SELECT jsonb_path_query({alias}.attrs, {objects}::jsonpath) #>> '{{}}'"
        # Expired transient entities are invisible here too, as everywhere (store: _LIVE).
        where = [
            f"{inner}.id IN ({ids})",
            f"({inner}.expires_at IS NULL OR {inner}.expires_at > now())",
        ]
        if link.types:
            types = self.params.add([self.expand(t) for t in link.types])
            where.append(f"{inner}.types && {types}::text[]")
        negated = isinstance(expr, Exists) and expr.negated
        if isinstance(expr, Exists):
            where.append(self.expr(Exists(link.path), inner))
        elif isinstance(expr, Pattern):
            where.append(self.expr(Pattern(link.path, expr.regex, expr.negated), inner))
        else:
            where.append(self.expr(Comparison(link.path, expr.op, expr.value), inner))
        sql = f"EXISTS (SELECT 1 FROM {table} AS {inner} WHERE {' AND '.join(where)})"
        return f"NOT {sql}" if negated else sql

    # --- jsonpath construction ----------------------------------------------------------------

    def prefix(self, path: AttrPath) -> tuple[str, bool]:
        """Jsonpath to the target element(s); True if it ends at an instance member."""
        steps, member = targets.prefix(path, self.expand)
        first, *rest = steps
        return "$." + jsonpath_string(first) + "[*]" + "".join(_step(s) for s in rest), member

    def exists(self, path: AttrPath, alias: str) -> str:
        if len(path.names) == 1 and not path.keys:
            return f"{alias}.attrs ? {self.params.add(self.expand(path.names[0]))}"
        prefix, member = self.prefix(path)
        found = _jsonpaths(targets.targets(path, member, targets.EQUALITY))
        cond = " || ".join(f"exists({t})" for t in found)
        return self.path_exists(f"{prefix} ? ({cond})", alias)

    def comparison_path(self, term: Comparison) -> str:
        prefix, member = self.prefix(term.path)
        value = term.value
        found = _jsonpaths(targets.comparison_targets(term.path, member, term.op, value))
        if term.op == "!=":
            predicate = _operand_predicate("==", value)
            cond = " || ".join(f"(exists({t}) && !exists({t} ? ({predicate})))" for t in found)
        else:
            predicate = _operand_predicate(term.op, value)
            cond = " || ".join(f"exists({t} ? ({predicate}))" for t in found)
        return f"{prefix} ? ({cond})"

    def pattern_path(self, term: Pattern) -> str:
        prefix, member = self.prefix(term.path)
        regex = jsonpath_string(term.regex)
        if term.negated:
            predicate = f'@.type() == "string" && !(@ like_regex {regex})'
        else:
            predicate = f"@ like_regex {regex}"
        found = _jsonpaths(targets.targets(term.path, member, targets.ORDER))
        cond = " || ".join(f"exists({t} ? ({predicate}))" for t in found)
        return f"{prefix} ? ({cond})"


def _step(step: targets.Step) -> str:
    if isinstance(step, targets.Strings):
        return ' ? (@.type() == "string")'
    return ".*" if step == targets.ANY else "." + jsonpath_string(step)


def _jsonpaths(found: tuple[targets.Target, ...]) -> list[str]:
    """Jsonpaths (relative to an instance ``@``) of the target values."""
    return ["@" + "".join(_step(s) for s in target) for target in found]


def _operand_predicate(op: str, value: Value | Range | ValueList) -> str:
    if isinstance(value, Range):
        low = _predicate(">=", value.low)
        high = _predicate("<=", value.high)
        return f"({low}) && ({high})"
    if isinstance(value, ValueList):
        return " || ".join(f"({_predicate('==', item)})" for item in value.items)
    return _predicate(op, value)


def _predicate(op: str, value: Value) -> str:
    """Jsonpath predicate comparing the current item ``@`` with a literal."""
    if isinstance(value, Number):
        return f"@ {op} {value.text}"
    if isinstance(value, Text | Uri):
        return f"@ {op} {jsonpath_string(value.value)}"
    if isinstance(value, Boolean):
        return f"@ {op} {'true' if value.value else 'false'}"
    stored, canonical_template = _TEMPLATES[value.kind]
    literal = f"{jsonpath_string(value.canonical)}.datetime({jsonpath_string(canonical_template)})"
    parsed = [f"@.datetime({jsonpath_string(t)})" for t in stored]
    if value.kind == "dateTime":
        parsed.append("@.datetime()")  # ISO 8601 with a UTC offset (or none): not "Z"
    return " || ".join(f"{p} {op} {literal}" for p in parsed)


# --- scopeQ, type, id ---------------------------------------------------------------------------


def scope_to_sql(
    expr: ScopeExpr, *, params: SqlParams | None = None, alias: str = "e"
) -> tuple[str, list[Any]]:
    """Condition on ``e.scopes`` (text[]): any of the entity's scopes matches."""
    params = params if params is not None else SqlParams()
    return _scope(expr, params, check_identifier(alias)), params.args


def _scope(expr: ScopeExpr, params: SqlParams, alias: str) -> str:
    if isinstance(expr, ScopeOr):
        return "(" + " OR ".join(_scope(t, params, alias) for t in expr.terms) + ")"
    if isinstance(expr, ScopeAnd):
        return "(" + " AND ".join(_scope(t, params, alias) for t in expr.terms) + ")"
    return _scope_match(expr, params, alias)


def _scope_match(match: ScopeMatch, params: SqlParams, alias: str) -> str:
    if not match.levels:  # /#: any non-empty scope
        return f"coalesce(cardinality({alias}.scopes), 0) > 0"
    if "+" not in match.levels and not match.descendants:
        scope = "/" + "/".join(match.levels)
        return f"{alias}.scopes @> {params.add([scope])}::text[]"
    regex = "^" + "".join("/[^/]+" if lv == "+" else "/" + re.escape(lv) for lv in match.levels)
    regex += "(/.*)?$" if match.descendants else "$"
    return (
        f"EXISTS (SELECT 1 FROM unnest({alias}.scopes) AS s(scope) "
        f"WHERE s.scope ~ {params.add(regex)})"
    )


def type_to_sql(
    expr: TypeExpr, expand: Expand, *, params: SqlParams | None = None, alias: str = "e"
) -> tuple[str, list[Any]]:
    """Condition on ``e.types`` with ``&&`` (any of) / ``@>`` (all of): GIN-indexable."""
    params = params if params is not None else SqlParams()
    alias = check_identifier(alias)
    terms = expr.terms if isinstance(expr, TypeOr) else (expr,)
    singles = [expand(t.name) for t in terms if isinstance(t, TypeName)]
    parts = []
    if singles:
        parts.append(f"{alias}.types && {params.add(singles)}::text[]")
    for term in terms:
        if isinstance(term, TypeAnd):
            names = [expand(n.name) for n in term.names]
            parts.append(f"{alias}.types @> {params.add(names)}::text[]")
    sql = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    return sql, params.args


def ids_to_sql(
    ids: Sequence[str], *, params: SqlParams | None = None, alias: str = "e"
) -> tuple[str, list[Any]]:
    """``id=a,b,c``: the entity id is one of them."""
    params = params if params is not None else SqlParams()
    return f"{check_identifier(alias)}.id = ANY({params.add(list(ids))}::text[])", params.args


def id_pattern_to_sql(
    pattern: str, *, params: SqlParams | None = None, alias: str = "e"
) -> tuple[str, list[Any]]:
    """``idPattern``: a POSIX regular expression on the entity id."""
    if not pattern:
        raise BadRequestData("idPattern: empty regular expression")
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise BadRequestData(f"idPattern: invalid regular expression {pattern!r}") from exc
    params = params if params is not None else SqlParams()
    return f"{check_identifier(alias)}.id ~ {params.add(pattern)}", params.args
