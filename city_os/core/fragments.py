"""Entity fragments: the parts of a request body that an update, append, merge or partial update
applies to a stored entity, parsed into the stored (expanded) form.

Layer: core/. Pure helpers over ngsild/ parsing with the request's term map and limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.events.model import ChangeKind
from city_os.ngsild import merge
from city_os.ngsild.attributes import check_members, parse_attributes, parse_instance, reject_nulls
from city_os.ngsild.entity import (
    NULL_URI,
    VALUE_KEY,
    Attrs,
    ParsedEntity,
    check_datetime,
    check_entity_id,
    expand_attr_name,
    now_iso,
    parse_scopes,
    parse_types,
)
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.entities import Stored

VALUE_MEMBERS = frozenset(VALUE_KEY.values())
# Optimistic writes re-read and re-apply a change this many times before giving up.
MAX_RETRIES = 20

# A pure change applied to a stored entity: returns the new record and the event kind, or None
# when nothing is to be written. It may raise NgsiLdError.
Change = Callable[[Stored], tuple[EntityRecord, ChangeKind, list[str] | None] | None]


def copy_attrs(attrs: Attrs) -> Attrs:
    """A copy the ngsild.merge functions may change: they replace instances and edit the lists
    of instances, but never change an instance dict in place."""
    return {iri: list(instances) for iri, instances in attrs.items()}


def geo_changed(before: Attrs, after: Attrs) -> bool:
    return merge.geometries(before) != merge.geometries(after)


def body_id(body: Any) -> str:
    if isinstance(body, dict):
        raw = body.get("id", body.get("@id"))
        if isinstance(raw, str):
            return raw
    return ""


def expand_attr(ctx: RequestContext, attr: str) -> str:
    return expand_attr_name(ctx.terms, attr)


def parse_fragment(
    body: object, ctx: RequestContext, *, allow_null: bool = False, id_required: bool = False
) -> ParsedEntity:
    """An entity fragment (attributes to append, update or merge; maybe id/type/scope)."""
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object of attributes")
    check_members(body, ctx.limits)
    raw_id = body.get("id", body.get("@id"))
    entity_id = check_entity_id(raw_id) if (raw_id is not None or id_required) else ""
    raw_type = body.get("type", body.get("@type"))
    types = parse_types(ctx.terms, raw_type, ctx.limits) if raw_type is not None else []
    parsed = ParsedEntity(entity_id, types)
    if "scope" in body:
        parsed.scopes = parse_scopes(body["scope"])
    parsed.attrs = parse_attributes(body, ctx.terms, ctx.now, allow_null=allow_null)
    if body.get("expiresAt") is not None:
        parsed.expires_at = check_datetime(body["expiresAt"], "expiresAt")
    return parsed


def attribute_fragment(
    ctx: RequestContext, attr: str, body: object, *, allow_null: bool
) -> tuple[str, dict[str, Any]]:
    iri = expand_attr(ctx, attr)
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object (an attribute)")
    clean = {k: v for k, v in body.items() if k != "@context"}
    if not clean:
        raise BadRequestData("the attribute fragment is empty")
    if allow_null and "type" not in clean:
        # Partial update: only the members given are changed.
        patch: dict[str, Any] = {}
        if isinstance(clean.get("value"), dict | list):
            reject_nulls(attr, clean["value"])
        for key, value in clean.items():
            if key in (
                "value",
                "object",
                "languageMap",
                "vocab",
                "json",
                "valueList",
                "objectList",
                "datasetId",
                "observedAt",
                "unitCode",
                "objectType",
            ):
                null = value is None or value in (NULL_URI, {"@none": NULL_URI})
                patch[key] = None if null and key in VALUE_MEMBERS else value
            else:
                patch[expand_attr(ctx, key)] = parse_instance(
                    key, value, ctx.terms, ctx.now, allow_null=True, sub=True
                )
        if "vocab" in patch and patch["vocab"] is not None:
            v = patch["vocab"]
            patch["vocab"] = (
                [ctx.terms.expand_vocab_value(x) for x in v]
                if isinstance(v, list)
                else ctx.terms.expand_vocab_value(v)
            )
        return iri, patch
    return iri, parse_instance(attr, clean, ctx.terms, ctx.now, allow_null=allow_null)


def stored_entity(record: EntityRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "types": record.types,
        "scopes": record.scopes,
        "attrs": record.attrs,
        "createdAt": record.created_at,
        "modifiedAt": record.modified_at,
        "expiresAt": record.expires_at,
    }


def moved(before: EntityRecord, after: EntityRecord) -> bool:
    """Whether a change gives the entity other types or scopes (access control: the new facts
    must be writable too)."""
    return before.types != after.types or (before.scopes or []) != (after.scopes or [])


def drop_scope(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
    if not stored.record.scopes:
        raise ResourceNotFound(f"entity {stored.record.id} has no scope")
    rec = stored.record
    return (
        EntityRecord(rec.id, rec.types, rec.attrs, None, rec.created_at, now_iso(), rec.expires_at),
        "updated",
        ["scope"],
    )
