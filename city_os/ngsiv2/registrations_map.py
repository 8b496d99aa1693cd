"""v2 registrations <-> NGSI-LD context source registrations (pure, no I/O).

Layer: ngsiv2/. A v2 registration is stored as an NGSI-LD CSourceRegistration (federation/),
so both APIs see the same registrations and the distributed operations consult both. The
mapping:

- ``dataProvided.entities`` -> ``information.entities`` (ids through ``ids.ld_id``,
  ``idPattern`` adapted by ``ids.id_pattern``; ``type`` is required, ``typePattern`` is not
  supported); ``dataProvided.attrs`` -> ``propertyNames`` (v2 does not tell Relationships);
  ``dataProvided.expression`` is not supported.
- ``provider.http.url`` -> ``endpoint``; ``supportedForwardingMode`` ``all`` (default) ->
  operations ``retrieveOps`` + ``updateOps``, ``query`` -> ``retrieveOps``, ``update`` ->
  ``updateOps``; ``none`` and ``legacyForwarding: true`` (NGSIv1) are refused (400).
- ``description`` -> ``description``; ``expires`` -> ``expiresAt``; ``status`` ``inactive`` is
  refused (an NGSI-LD registration has no inactive state); the ``Fiware-ServicePath`` of the
  request -> ``scope``.
The v2 id is the registration id without its ``urn:ngsi-ld:ContextSourceRegistration:`` prefix.
"""

from __future__ import annotations

from typing import Any, Final

from city_os.errors import BadRequestData
from city_os.federation.model import GROUPS, Registration
from city_os.federation.registrations import ID_PREFIX
from city_os.ngsiv2.ids import check_v2_name, id_pattern, ld_id, v2_id
from city_os.ngsiv2.translate import utc_datetime

_TOP: Final = frozenset({"id", "description", "dataProvided", "provider", "expires", "status"})
_MODES: Final = {"all": ["retrieveOps", "updateOps"], "query": ["retrieveOps"],
                 "update": ["updateOps"]}  # fmt: skip
_V2_PATTERN: Final = "^(?:urn:ngsiv:)?(?:"


def v2_registration_id(rid: str) -> str:
    return rid.removeprefix(ID_PREFIX)


def ld_registration_id(v2: str) -> str:
    check_v2_name(v2, "registration id")
    return v2 if v2.startswith(ID_PREFIX) else ID_PREFIX + v2


def _entities(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise BadRequestData("dataProvided.entities must be a non-empty array")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"id", "idPattern", "type", "typePattern"}:
            raise BadRequestData("dataProvided.entities: each item has id or idPattern and type")
        if "typePattern" in item:
            raise BadRequestData("dataProvided.entities: typePattern is not supported")
        if "type" not in item:
            raise BadRequestData("dataProvided.entities: type is required")
        entity: dict[str, Any] = {"type": check_v2_name(item["type"], "entity type")}
        if "id" in item:
            entity["id"] = ld_id(check_v2_name(item["id"], "entity id"))
        elif "idPattern" in item:
            if not isinstance(item["idPattern"], str) or not item["idPattern"]:
                raise BadRequestData("dataProvided.entities: idPattern must be a string")
            entity["idPattern"] = id_pattern(item["idPattern"])
        out.append(entity)
    return out


def to_ngsild(body: Any, scope: str | None, *, update: bool = False) -> dict[str, Any]:
    """The NGSI-LD registration (or fragment) of a v2 body, in the v2 API's terms."""
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object (a registration)")
    unknown = sorted(set(body) - _TOP)
    if unknown:
        raise BadRequestData(f"unknown registration member {', '.join(unknown)}")
    out: dict[str, Any] = {} if update else {"type": "ContextSourceRegistration"}
    if "id" in body and not update:
        out["id"] = ld_registration_id(body["id"])
    if "description" in body:
        if not isinstance(body["description"], str):
            raise BadRequestData("description must be a string")
        out["description"] = body["description"]
    provided = body.get("dataProvided")
    if provided is not None:
        if not isinstance(provided, dict) or set(provided) - {"entities", "attrs", "expression"}:
            raise BadRequestData("dataProvided must be an object with entities and attrs")
        if "expression" in provided:
            raise BadRequestData("dataProvided.expression is not supported")
        info: dict[str, Any] = {"entities": _entities(provided.get("entities"))}
        attrs = provided.get("attrs")
        if attrs:
            if not isinstance(attrs, list):
                raise BadRequestData("dataProvided.attrs must be an array of attribute names")
            info["propertyNames"] = [check_v2_name(a, "attribute name") for a in attrs]
        out["information"] = [info]
    elif not update:
        raise BadRequestData("dataProvided is mandatory")
    provider = body.get("provider")
    if provider is not None:
        if not isinstance(provider, dict) or not isinstance(provider.get("http"), dict):
            raise BadRequestData("provider.http.url is mandatory")
        if provider.get("legacyForwarding"):
            raise BadRequestData("provider.legacyForwarding (NGSIv1) is not supported")
        mode = provider.get("supportedForwardingMode", "all")
        if mode not in _MODES:
            raise BadRequestData(
                f"provider.supportedForwardingMode {mode!r} is not supported; use all, query"
                " or update"
            )
        out["endpoint"] = provider["http"].get("url")
        out["operations"] = _MODES[mode]
    elif not update:
        raise BadRequestData("provider is mandatory")
    if "expires" in body:
        out["expiresAt"] = utc_datetime(body["expires"], "expires")
    if body.get("status", "active") != "active":
        raise BadRequestData("status: only active registrations are supported")
    if scope is not None and not update:
        out["scope"] = scope
    return out


def _pattern(stored: str) -> str:
    if stored.startswith(_V2_PATTERN) and stored.endswith(")"):
        return "^" + stored[len(_V2_PATTERN) : -1]
    return stored


def to_v2(reg: Registration, compact_type: Any, compact_attr: Any, now: Any) -> dict[str, Any]:
    """The v2 rendering of a registration (made through either API)."""
    entities: list[dict[str, Any]] = []
    attrs: list[str] = []
    for info in reg.information:
        for e in info.entities:
            item: dict[str, Any] = {}
            if e.id is not None:
                item["id"] = v2_id(e.id)
            else:
                item["idPattern"] = _pattern(e.id_pattern) if e.id_pattern else ".*"
            if e.types:
                item["type"] = compact_type(e.types[0])
            entities.append(item)
        attrs += [compact_attr(a) for a in (*info.property_names, *info.relationship_names)]
    retrieve, update = reg.serves("retrieveOps"), GROUPS["updateOps"] <= reg.operations
    mode = "all" if retrieve and update else "query" if retrieve else "update" if update else "all"
    out: dict[str, Any] = {"id": v2_registration_id(reg.id)}
    if reg.description is not None:
        out["description"] = reg.description
    out["dataProvided"] = {"entities": entities, "attrs": list(dict.fromkeys(attrs))}
    out["provider"] = {
        "http": {"url": reg.endpoint},
        "supportedForwardingMode": mode,
        "legacyForwarding": False,
    }
    if reg.expires_at is not None:
        out["expires"] = reg.expires_at
    out["status"] = "expired" if reg.expired(now) else "active"
    return out
