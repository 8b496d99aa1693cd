"""CSV of temporal representations, for analysts who work in spreadsheets (Accept: text/csv).

Layer: temporal/ (pure). One row per instance, or per aggregation period and method:

* instances: ``entityId,attribute,datasetId,time,value`` (time: the timeproperty's instant;
  value: the JSON value, strings unquoted);
* aggregated: ``entityId,attribute,datasetId,method,start,end,value``;
* with ``options=sysAttrs`` (normalized instances), two more columns ``actor,client``: who
  recorded each instance (city-os audit, the ``cityosactor``/``cityosclient`` members; empty
  for the broker itself and with authentication off).

Attribute names are compacted like the JSON output; the default instance has an empty datasetId.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from city_os.temporal.render import ACTOR_MEMBER, CLIENT_MEMBER, VALUES_KEY

INSTANCE_COLUMNS = ("entityId", "attribute", "datasetId", "time", "value")
AUDIT_COLUMNS = ("actor", "client")
AGGREGATED_COLUMNS = ("entityId", "attribute", "datasetId", "method", "start", "end", "value")
_HEAD = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"})
_VALUE_MEMBERS = ("value", "object", "languageMap", "vocab", "json", "valueList", "objectList")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def to_csv(
    bodies: list[dict[str, Any]],
    *,
    timeproperty: str,
    methods: tuple[str, ...] = (),
    sys_attrs: bool = False,
) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    audit = sys_attrs and not methods
    no_one: tuple[str, ...] = ("", "") if audit else ()
    w.writerow(
        AGGREGATED_COLUMNS if methods else INSTANCE_COLUMNS + (AUDIT_COLUMNS if audit else ())
    )
    for body in bodies:
        eid = body.get("id", "")
        for name, attr in body.items():
            if name in _HEAD:
                continue
            for item in _items(attr):
                if not isinstance(item, dict):
                    continue
                ds = item.get("datasetId", "")
                if methods:
                    for m in methods:
                        for value, start, end in item.get(m, []):
                            w.writerow((eid, name, ds, m, start, end, _cell(value)))
                    continue
                pairs = item.get(VALUES_KEY.get(item.get("type", "Property"), "values"))
                if (isinstance(pairs, list) and "values" not in item) or pairs is not None:
                    for value, when in pairs or []:
                        w.writerow((eid, name, ds, when, _cell(value), *no_one))
                    continue
                member = next((k for k in _VALUE_MEMBERS if k in item), "value")
                when = item.get(timeproperty) or item.get("modifiedAt") or ""
                who: tuple[str, ...] = ()
                if audit:
                    who = (_cell(item.get(ACTOR_MEMBER)), _cell(item.get(CLIENT_MEMBER)))
                w.writerow((eid, name, ds, when, _cell(item.get(member)), *who))
    return out.getvalue()
