"""Entity persistence on PostgreSQL, the SQL side: the stored form of an entity row and the
statements of one tenant schema (entity rows, geometry rows and outbox rows in ONE statement;
with access control, a create's ``own`` grant and its audit row too).

Layer: store/. Only generated schema names and bound parameters go into the SQL text; the
parameters of a large write are serialised here in separate event-loop slices (``_encoded``),
and reads of many rows take ``attrs`` as text, parsed row by row in slices (``stored_rows``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from city_os.core.slices import sliced
from city_os.ngsild.merge import geometries
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.auth_access import owner_grant_sql


@dataclass(frozen=True)
class Stored:
    record: EntityRecord
    version: int


@dataclass
class Write:
    """One entity write: the state to store, the version it was derived from, its event."""

    record: EntityRecord
    event: dict[str, Any]
    version: int = 0  # 0 = insert
    geo_changed: bool = True


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 with ``Z`` for UTC; seconds precision when the microseconds are 0, else µs."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # asyncpg's timestamptz: %-formatting beats isoformat() + replace()
        fields = (value.year, value.month, value.day, value.hour, value.minute, value.second)
        us = value.microsecond
        return _ISO_US % (*fields, us) if us else _ISO_S % fields
    return value.isoformat().replace("+00:00", "Z")  # timespec "auto": the same two precisions


_ISO_S = "%04d-%02d-%02dT%02d:%02d:%02dZ"
_ISO_US = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def _record(row: asyncpg.Record) -> Stored:
    scopes = row["scopes"]
    attrs = row["attrs"]
    return Stored(
        EntityRecord(
            id=row["id"],
            types=list(row["types"]),
            attrs=orjson.loads(attrs) if isinstance(attrs, str) else attrs,
            scopes=list(scopes) if scopes is not None else None,
            created_at=_iso(row["created_at"]) or "",
            modified_at=_iso(row["modified_at"]) or "",
            expires_at=_iso(row["expires_at"]),
        ),
        row["version"],
    )


_NAMES = ("id", "types", "scopes", "attrs", "created_at", "modified_at", "expires_at", "version")
_COLUMNS = ", ".join(_NAMES)


def text_columns(alias: str = "") -> str:
    """``_COLUMNS`` (of table or subquery ``alias``) with ``attrs`` as text, for reads of many
    rows. asyncpg decodes every row of a result within one event-loop callback (libuv reads the
    socket until it is drained): with the jsonb codec parsing each row there, a 1,000-row
    result held the loop for 50-100 ms. As text the callback only copies strings, and
    ``stored_rows`` parses them in slices."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{n}::text AS {n}" if n == "attrs" else prefix + n for n in _NAMES)


_TEXT_COLUMNS = text_columns()


async def stored_rows(rows: list[asyncpg.Record]) -> list[Stored]:
    """``_record`` of each row, yielding to the event loop between time slices."""
    return await sliced(_record, rows)


# The ids of a write statement's input ``x`` as an array: joined alone, x (jsonb_to_recordset,
# which the planner always estimates at 100 rows) made the generic plan of an update or delete
# hash the whole entities table while its statistics showed a few thousand rows (a
# sequential scan per PATCH); ``e.id = ANY(...)`` keeps it on the primary key at any size.
_IDS = "ARRAY(SELECT x.id FROM x)"
_LIVE = "(expires_at IS NULL OR expires_at > now())"

# Outbox rows arrive as parallel arrays with the envelope as text: stored as json (no jsonb
# conversion) and published by the relay byte for byte.
_OUTBOX = """
  INSERT INTO cityos.outbox (event_id, tenant, entity_id, event_type, payload)
  SELECT o.event_id::uuid, ${t}, o.entity_id, o.event_type, o.payload::json
  FROM unnest(${e}::text[], ${e1}::text[], ${e2}::text[], ${e3}::text[])
       AS o(event_id, entity_id, event_type, payload)
  JOIN {done} d ON d.id = o.entity_id
"""


def _outbox(done: str, first: int) -> str:
    """The outbox insert of a write statement; its parameters start at ``$first`` (5 of them,
    followed by the 2 of ``_actor_gate``)."""
    return (
        _OUTBOX.replace("{done}", done)
        .replace("{e}", str(first))
        .replace("{e1}", str(first + 1))
        .replace("{e2}", str(first + 2))
        .replace("{e3}", str(first + 3))
        .replace("{t}", str(first + 4))
    )


# From this many bytes of JSON on, a statement's parameters are encoded in separate slices of
# the event loop: a 2 MB geometry is serialised four times (entity, geometry, the event's
# changes and entity) and in one go that held the loop for ~30 ms.
_LARGE_JSON = 256 * 1024


async def _encoded(rows: list[Any], geo: list[Any] | None, writes: list[Write]) -> list[Any]:
    """The parameters of a write statement: ``rows``, ``geo`` (None: unused) and the outbox
    arrays, with the JSON ones serialised here (the jsonb codec passes bytes through)."""
    entities = orjson.dumps(rows)
    large = len(entities) > _LARGE_JSON
    if large:
        await asyncio.sleep(0)
    geometry = None if geo is None else orjson.dumps(geo)
    if large:
        await asyncio.sleep(0)
    outbox = _outbox_args(writes)
    if large:
        await asyncio.sleep(0)
    return [entities, geometry, *outbox]


def recorded_actor(actor: Mapping[str, Any] | None) -> tuple[str, str]:
    """Who a change is recorded as in the temporal history (``attr_instances.actor`` and
    ``client``): ``Principal.actor``'s ``cityosactor``/``cityosclient``, '' for none. With
    authentication off (``local``) and for the broker's own changes (expiry): '' = NULL."""
    if not actor:
        return "", ""
    who = actor.get("cityosactor") or ""
    return ("" if who == "local" else str(who)), str(actor.get("cityosclient") or "")


def _actor_args(writes: list[Write]) -> list[str]:
    """The actor parameters of a write statement: the statements of one request share it."""
    return list(recorded_actor(writes[0].event.get("payload") if writes else None))


def _actor_gate(first: int) -> str:
    """A one-time filter of a write statement's input that sets ``cityos.actor`` and
    ``cityos.client`` for the rest of the transaction (is_local), read by the column defaults
    of attr_instances when the capture triggers run at the end of the statement: no extra
    round trip, and nothing left on the pooled connection after the transaction."""
    return (
        f" WHERE (SELECT set_config('cityos.actor', ${first}::text, true)"
        f" || set_config('cityos.client', ${first + 1}::text, true)) IS NOT NULL"
    )


def _outbox_args(writes: list[Write]) -> list[Any]:
    events = [w.event for w in writes]
    return [
        [e["event_id"] for e in events],
        [e["entity_id"] for e in events],
        [e["event_type"] for e in events],
        [orjson.dumps(e["payload"]).decode() for e in events],
        events[0]["tenant"] if events else "",
        *_actor_args(writes),
    ]


class EntityStatements:
    """SQL text for one tenant schema (the schema name is generated, see db.schema_name)."""

    def __init__(self, schema: str) -> None:
        s = schema
        self.get_one = f"SELECT {_COLUMNS} FROM {s}.entities WHERE id = $1 AND {_LIVE}"
        self.get_many = (
            f"SELECT {_TEXT_COLUMNS} FROM {s}.entities WHERE id = ANY($1::text[]) AND {_LIVE}"
        )
        insert = f"""
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(id text, types text[], scopes text[], attrs jsonb, created_at timestamptz,
         expires_at timestamptz){_actor_gate(8)}
), ins AS (
  INSERT INTO {s}.entities (id, types, scopes, attrs, created_at, modified_at, expires_at)
  SELECT id, types, scopes, attrs, created_at, created_at, expires_at FROM x
  ON CONFLICT (id) DO NOTHING
  RETURNING id
), g AS (
  INSERT INTO {s}.geo (entity_id, attr, dataset_id, geom)
  SELECT n.id, n.attr, n.ds, ST_SetSRID(ST_GeomFromGeoJSON(n.geom), 4326)
  FROM jsonb_to_recordset($2::jsonb) AS n(id text, attr text, ds text, geom jsonb)
  JOIN ins ON ins.id = n.id
), ob AS ({_outbox("ins", 3)})"""
        self.insert = insert + "\nSELECT ins.id FROM ins"
        # With access control: the creator's ``own`` grant and its audit row, $10–$13.
        self.insert_owned = insert + owner_grant_sql(s, "ins", 10) + "\nSELECT ins.id FROM ins"
        self.update = f"""
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(id text, types text[], scopes text[], attrs jsonb, modified_at timestamptz,
         expires_at timestamptz, version bigint, geo boolean){_actor_gate(8)}
), upd AS (
  UPDATE {s}.entities e
  SET types = x.types, scopes = x.scopes, attrs = x.attrs, modified_at = x.modified_at,
      expires_at = x.expires_at, version = e.version + 1
  FROM x WHERE e.id = x.id AND e.version = x.version AND e.id = ANY({_IDS})
  RETURNING e.id
), n AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS n(id text, attr text, ds text, geom jsonb)
), gdel AS (
  DELETE FROM {s}.geo g USING upd, x
  WHERE g.entity_id = upd.id AND x.id = upd.id AND x.geo
    AND NOT EXISTS (SELECT 1 FROM n WHERE n.id = g.entity_id AND n.attr = g.attr
                    AND n.ds = g.dataset_id)
), gup AS (
  INSERT INTO {s}.geo (entity_id, attr, dataset_id, geom)
  SELECT n.id, n.attr, n.ds, ST_SetSRID(ST_GeomFromGeoJSON(n.geom), 4326)
  FROM n JOIN upd ON upd.id = n.id
  ON CONFLICT (entity_id, attr, dataset_id) DO UPDATE SET geom = EXCLUDED.geom
), ob AS ({_outbox("upd", 3)})
SELECT upd.id FROM upd"""
        # The common case (no geometry changed) skips the geo CTEs entirely; $2 is unused.
        self.update_plain = f"""
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x(id text, types text[], scopes text[], attrs jsonb, modified_at timestamptz,
         expires_at timestamptz, version bigint){_actor_gate(8)}
), upd AS (
  UPDATE {s}.entities e
  SET types = x.types, scopes = x.scopes, attrs = x.attrs, modified_at = x.modified_at,
      expires_at = x.expires_at, version = e.version + 1
  FROM x WHERE e.id = x.id AND e.version = x.version AND e.id = ANY({_IDS})
    AND $2::int IS NULL
  RETURNING e.id
), ob AS ({_outbox("upd", 3)})
SELECT upd.id FROM upd"""
        self.delete = f"""
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, version bigint){_actor_gate(7)}
), del AS (
  DELETE FROM {s}.entities e USING x
  WHERE e.id = x.id AND e.version = x.version AND e.id = ANY({_IDS})
  RETURNING e.id
), gdel AS (
  DELETE FROM {s}.geo g USING del WHERE g.entity_id = del.id
), ob AS ({_outbox("del", 2)})
SELECT del.id FROM del"""
        self.expired_by_id = (
            f"SELECT {_TEXT_COLUMNS} FROM {s}.entities WHERE id = ANY($1::text[])"
            " AND expires_at <= now()"
        )
        self.expired = f"""
SELECT {_TEXT_COLUMNS} FROM {s}.entities
WHERE expires_at <= now() ORDER BY expires_at LIMIT $1"""


def _geo_rows(writes: list[Write]) -> list[dict[str, Any]]:
    rows = []
    for w in writes:
        if w.geo_changed:
            for attr, ds, geom in geometries(w.record.attrs):
                rows.append({"id": w.record.id, "attr": attr, "ds": ds, "geom": geom})
    return rows
