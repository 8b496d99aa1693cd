"""The Snapshot data type (§5.2.41) and the checks of its operations.

Layer: snapshots/ (pure, no I/O). A Snapshot is kept as the JSON it is rendered as (its members
are core terms, never user attributes, so there is nothing to expand or compact):

* ``id``, ``type`` ("Snapshot"), ``snapshotQueries`` (Query data types, as sent),
  ``snapshotPriority`` (a positive integer, 5 unless given), ``lastUsedAt`` (set at creation,
  moved by every read scoped to the Snapshot) — these members are always rendered;
* ``snapshotStatus`` (``preparing`` until the fill ends, then ``success`` when every query ran
  and found entities, ``partial`` when some did, ``failed`` when none did) and
  ``snapshotQueriesDetails`` (one entry per query: ``resultStatus`` ``success`` / ``empty`` /
  ``failed``, ``entityCount``, ``detail`` when it failed);
* ``createdAt`` and ``modifiedAt``, rendered with ``options=sysAttrs`` only.

Only ``snapshotPriority`` may be changed (§5.16.4); the broker's members and the queries are
read-only. The purge of §5.16.7 selects Snapshots with a ``q`` over the Snapshot's own members
(anything else is BadRequestData: purging on a member a Snapshot cannot have would be a silent
no-op or, worse, a purge of everything).
"""

from __future__ import annotations

from typing import Any, Final

from city_os.errors import BadRequestData
from city_os.ngsild.entity import check_entity_id
from city_os.ngsild.query.ast import And, AttrPath, Comparison, Exists, Or, Pattern, QExpr
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import CompiledSelection, compile_selection
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.representation import EntityRecord

Doc = dict[str, Any]
ID_PREFIX: Final = "urn:ngsi-ld:Snapshot:"
DEFAULT_PRIORITY: Final = 5
PREPARING: Final = "preparing"
# Members the broker sets (read-only for clients) and the one a client may change.
BROKER_MEMBERS: Final = frozenset(
    {"snapshotStatus", "snapshotQueriesDetails", "lastUsedAt", "createdAt", "modifiedAt"}
)
WRITABLE: Final = frozenset({"snapshotPriority"})
_CREATE_MEMBERS: Final = frozenset(
    {"id", "type", "snapshotQueries", "snapshotPriority", "@context"}
)
_CLONE_MEMBERS: Final = frozenset({"id", "type", "snapshotPriority", "@context"})
# The members a purge q may name (§5.16.7.4).
QUERYABLE: Final = frozenset(
    {"snapshotPriority", "snapshotStatus", "lastUsedAt", "createdAt", "modifiedAt"}
)
_SYSTEM: Final = ("createdAt", "modifiedAt")


def _object(body: object, what: str) -> Doc:
    if not isinstance(body, dict):
        raise BadRequestData(f"{what} must be a JSON object")
    return body


def _type(body: Doc, required: bool) -> None:
    if "type" not in body and not required:
        return
    if body.get("type") != "Snapshot":
        raise BadRequestData('a Snapshot needs "type": "Snapshot"')


def _members(body: Doc, allowed: frozenset[str], operation: str) -> None:
    for name in body:
        if name in allowed:
            continue
        if name in BROKER_MEMBERS or name == "snapshotQueries":
            raise BadRequestData(f"{name} is read-only: it cannot be set by {operation}")
        raise BadRequestData(f"{name} is not a member of a Snapshot")


def priority(value: object) -> int:
    if type(value) is not int or value < 1:
        raise BadRequestData(f"snapshotPriority must be a positive integer, not {value!r}")
    return value


def snapshot_id(body: Doc, fresh: str) -> str:
    """The id a new Snapshot gets: the body's (a URI) or ``fresh``."""
    if "id" not in body:
        return fresh
    if not isinstance(body["id"], str):
        raise BadRequestData("id must be a URI string")
    return check_entity_id(body["id"], "Snapshot id")


def parse_create(body: object) -> tuple[Doc, list[Doc]]:
    """A create request's body → (the checked body, its Query objects, in order). The Query
    objects themselves are parsed by the caller, with the request's @context."""
    doc = _object(body, "a Snapshot")
    _type(doc, required=True)
    _members(doc, _CREATE_MEMBERS, "a create")
    queries = doc.get("snapshotQueries")
    if not isinstance(queries, list) or not queries:
        raise BadRequestData("snapshotQueries must be a non-empty array of Query objects")
    for query in queries:
        if not isinstance(query, dict) or query.get("type") != "Query":
            # Temporal queries (a TemporalQuery of the temporal API) are not supported: the
            # copy holds current state only.
            raise BadRequestData('every item of snapshotQueries must be a "type": "Query" object')
    if "snapshotPriority" in doc:
        priority(doc["snapshotPriority"])
    return doc, queries


def new_snapshot(sid: str, queries: list[Doc], prio: int, now: str) -> Doc:
    return {
        "id": sid,
        "type": "Snapshot",
        "snapshotQueries": queries,
        "snapshotPriority": prio,
        "snapshotStatus": PREPARING,
        "snapshotQueriesDetails": [],
        "lastUsedAt": now,
        "createdAt": now,
        "modifiedAt": now,
    }


def parse_update(body: object) -> int:
    """§5.16.4: the new snapshotPriority (the only member that may change)."""
    doc = _object(body, "a Snapshot fragment")
    _type(doc, required=False)
    _members(doc, WRITABLE | {"type", "@context"}, "an update")
    if "snapshotPriority" not in doc:
        raise BadRequestData("the fragment changes nothing: snapshotPriority is the only member")
    return priority(doc["snapshotPriority"])


def parse_clone(body: object | None) -> Doc:
    """§5.16.2: what the clone changes (``id``, ``snapshotPriority``); the rest is copied."""
    if body is None:
        return {}
    doc = _object(body, "a clone request")
    _type(doc, required=False)
    _members(doc, _CLONE_MEMBERS, "a clone")
    if "snapshotPriority" in doc:
        priority(doc["snapshotPriority"])
    return doc


def outcome(details: list[Doc]) -> str:
    """§5.16.1.4: success when every query ran and found entities, partial when some query
    found some, failed otherwise."""
    found = [d["resultStatus"] == "success" for d in details]
    if found and all(found):
        return "success"
    return "partial" if any(found) else "failed"


def render(doc: Doc, sys_attrs: bool) -> Doc:
    return doc if sys_attrs else {k: v for k, v in doc.items() if k not in _SYSTEM}


# ------------------------------------------------------------------ the purge q

_NAMES: Final = Names(type=lambda t: t, attr=lambda a: a)


def _paths(expr: QExpr) -> list[AttrPath]:
    if isinstance(expr, And | Or):
        return [p for term in expr.terms for p in _paths(term)]
    if isinstance(expr, Comparison | Pattern | Exists):
        return [expr.path]
    return []


def purge_selection(q: str | None) -> CompiledSelection:
    """The Snapshots a purge removes (§5.16.7): ``q`` over the Snapshot's members only."""
    if q is None or not q.strip():
        raise BadRequestData("a purge of Snapshots needs q (over the Snapshot members)")
    expr = parse_q(q)
    for path in _paths(expr):
        if path.link is not None or path.names[0] not in QUERYABLE or len(path.names) > 1:
            raise BadRequestData(
                f"q may only name members of a Snapshot ({', '.join(sorted(QUERYABLE))})"
            )
    return compile_selection(Selection(q=expr), _NAMES)


def as_record(doc: Doc) -> EntityRecord:
    """A Snapshot as an entity with one Property per queryable member, for ``q``."""
    attrs = {
        name: [{"type": "Property", "value": doc[name]}]
        for name in QUERYABLE
        if doc.get(name) is not None
    }
    return EntityRecord(
        id=doc["id"],
        types=["Snapshot"],
        attrs=attrs,
        scopes=None,
        created_at=doc.get("createdAt", ""),
        modified_at=doc.get("modifiedAt", ""),
    )
