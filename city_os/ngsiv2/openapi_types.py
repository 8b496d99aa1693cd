"""The FIWARE NGSI v2 data types as OpenAPI 3.1 schemas, and the v2 face's components.

Layer: ngsiv2/ (documentation, no I/O). Entities, attributes and metadata in the normalized and
keyValues forms, the batch bodies, entity types, subscriptions (FIWARE NGSI v2 specification,
as Orion 3.x serves it; members city-os does not accept are left out), the FIWARE headers and
Orion's error body ``{"error", "description"}``, which every v2 4xx/5xx answer carries instead
of a ProblemDetails. Components are prefixed ``v2.`` where an NGSI-LD one has the same name.
"""

from __future__ import annotations

from city_os.ngsiv2.subscriptions import FORMATS
from city_os.openapi.declare import JSON, Schema, array, ref

_STRING = {"type": "string"}
_NAMES = array(_STRING)
_TIME = {"type": "string", "format": "date-time"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 256}


def _object(
    properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: object
) -> Schema:
    out: Schema = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


_ENTITY_HEAD = {"id": _NAME, "type": _NAME}
_DESCRIPTOR = _object(
    {"id": _STRING, "idPattern": _STRING, "type": _STRING, "typePattern": _STRING,
     "isPattern": {"type": ["string", "boolean"]}},
    additionalProperties=False,
)  # fmt: skip
_EXPRESSION = _object(
    {"q": _STRING, "mq": _STRING, "georel": _STRING, "geometry": _STRING, "coords": _STRING},
    additionalProperties=False,
)
_CHANNEL = _object(
    {"url": {"type": "string", "minLength": 1}, "qs": {"type": "object"},
     "method": {"enum": ["POST", "PUT", "PATCH", "DELETE", "GET"]},
     "headers": {"type": "object"}, "timeout": {"type": "integer", "minimum": 1},
     "topic": _STRING, "qos": {"enum": [0, 1, 2]}, "user": _STRING, "passwd": _STRING},
    ("url",),
)  # fmt: skip
_NOTIFICATION = {
    "http": _CHANNEL, "httpCustom": _CHANNEL, "mqtt": _CHANNEL, "mqttCustom": _CHANNEL,
    "attrs": _NAMES, "exceptAttrs": _NAMES, "attrsFormat": {"enum": sorted(FORMATS)},
    "metadata": _NAMES, "onlyChangedAttrs": {"type": "boolean"}, "covered": {"type": "boolean"},
    "maxFailsLimit": {"type": "integer"}, "timeout": {"type": "integer", "minimum": 1},
}  # fmt: skip
_SUBJECT = _object(
    {
        "entities": {**array(_DESCRIPTOR), "minItems": 1},
        "condition": _object(
            {"attrs": _NAMES, "expression": _EXPRESSION, "alterationTypes": _NAMES}
        ),
    },
    ("entities",),
)
_SUBSCRIPTION = {
    "description": _STRING, "subject": _SUBJECT, "expires": _TIME,
    "status": {"enum": ["active", "inactive"]}, "throttling": {"type": "number", "minimum": 0},
}  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "OrionError": _object(
        {"error": _STRING, "description": _STRING},
        ("error", "description"),
        description="An NGSIv2 error (Orion): the error name (BadRequest, NotFound, "
        "Unprocessable, …) and what is wrong",
    ),
    "V2Metadata": _object({"type": _STRING, "value": {}}, description="A metadata item"),
    "V2Attribute": _object(
        {
            "value": {},
            "type": _STRING,
            "metadata": {"type": "object", "additionalProperties": ref("V2Metadata")},
        },
        description="An attribute in the normalized form: without type, the value's own "
        "(Number, Text, Boolean, StructuredValue, None); geo:json, geo:point, DateTime and "
        "Relationship are mapped to NGSI-LD kinds",
    ),
    "V2Attributes": {
        "type": "object",
        "description": "Attributes by name: normalized, or bare values with options=keyValues",
        "additionalProperties": {"anyOf": [ref("V2Attribute"), {}]},
    },
    "V2Entity": {
        **_object(
            _ENTITY_HEAD,
            ("id",),
            description="An entity in the normalized form (type defaults to Thing on creation)",
        ),
        "additionalProperties": ref("V2Attribute"),
    },
    "V2EntityKeyValues": {
        **_object(_ENTITY_HEAD, ("id",), description="An entity in the keyValues form"),
        "additionalProperties": {},
    },
    "V2EntityInput": {
        "description": "An entity to create: normalized, or keyValues with options=keyValues",
        "anyOf": [ref("V2Entity"), ref("V2EntityKeyValues")],
    },
    "V2EntityOutput": {
        "description": "An entity as listed: normalized, keyValues (options=keyValues), or "
        "the array of its attribute values (options=values or unique)",
        "anyOf": [ref("V2Entity"), ref("V2EntityKeyValues"), {"type": "array"}],
    },
    "V2AttributesOutput": {
        "description": "The attributes of an entity, as an object or (options=values) an array",
        "anyOf": [ref("V2Attributes"), {"type": "array"}],
    },
    "V2BatchUpdate": _object(
        {
            "actionType": {"enum": ["append", "appendStrict", "delete", "replace", "update"]},
            "entities": {**array(ref("V2EntityInput")), "minItems": 1},
        },
        ("actionType", "entities"),
        additionalProperties=False,
    ),
    "V2BatchQuery": _object(
        {
            "entities": array(_DESCRIPTOR),
            "attrs": _NAMES,
            "expression": _EXPRESSION,
            "metadata": _NAMES,
        },
        additionalProperties=False,
    ),
    "V2EntityType": _object(
        {
            "type": _STRING,
            "attrs": {"type": "object", "additionalProperties": _object({"types": _NAMES})},
            "count": {"type": "integer", "minimum": 0},
        },
        ("attrs", "count"),
        description="An entity type: its attributes with their types, and how many entities",
    ),
    "V2Subscription": {
        **_object(
            _SUBSCRIPTION | {"notification": _object(_NOTIFICATION)}, ("subject", "notification")
        ),
        "description": "A subscription to create: exactly one of http, httpCustom, mqtt and "
        "mqttCustom; typePattern, oneshot and templates are not supported by city-os",
        "additionalProperties": False,
    },
    "V2SubscriptionFragment": {
        **_object(_SUBSCRIPTION | {"notification": _object(_NOTIFICATION)}),
        "description": "Members replacing those of the subscription; the result is checked "
        "as a whole",
    },
    "V2SubscriptionOutput": _object(
        {
            "id": _STRING,
            "description": _STRING,
            "subject": {"type": "object"},
            "notification": _object(
                {
                    **_NOTIFICATION,
                    "timesSent": {"type": "integer"},
                    "lastNotification": _TIME,
                    "lastSuccess": _TIME,
                    "lastFailure": _TIME,
                    "lastFailureReason": _STRING,
                }
            ),
            "expires": _TIME,
            "throttling": {"type": "number"},
            "status": {"enum": ["active", "inactive", "expired", "failed"]},
        },
        ("id", "subject", "notification", "status"),
    ),
    "V2EntryPoint": _object(
        {
            k: _STRING
            for k in ("entities_url", "types_url", "subscriptions_url", "registrations_url")
        },
        ("entities_url", "types_url", "subscriptions_url"),
    ),
    "V2Version": _object(
        {
            "orion": _object({"version": _STRING, "uptime": _STRING}, ("version", "uptime")),
            "city-os": _object({"version": _STRING, "ngsi-ld": _STRING}),
        },
        ("orion",),
    ),
    "V2Statistics": _object(
        {
            "uptime_in_secs": {"type": "integer", "minimum": 0},
            "measuring_interval_in_secs": {"type": "integer", "minimum": 0},
        },
        ("uptime_in_secs",),
    ),
}

_LEVEL = "[A-Za-z0-9_-]{1,50}"
_SERVICE_PATH = f"/(?:#|{_LEVEL}(?:/{_LEVEL}){{0,9}}(?:/#)?)?"


def _query(name: str, description: str, schema: Schema = _STRING) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}  # fmt: skip


PARAMETERS: dict[str, Schema] = {
    "Fiware-Service": {
        "name": "Fiware-Service",
        "in": "header",
        "description": "The tenant (lower-cased; absent: the default tenant)",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,50}$"},
    },
    "Fiware-ServicePath": {
        "name": "Fiware-ServicePath",
        "in": "header",
        "description": "The service path: the NGSI-LD scope of created entities; on reads a "
        "comma-separated list, /a/# meaning /a and below",
        "schema": {"type": "string", "pattern": f"^{_SERVICE_PATH}(?:,{_SERVICE_PATH})*$"},
    },
    "v2.options": _query(
        "options",
        "Comma-separated: keyValues, values, unique, count, append, upsert, noAttrDetail, …",
    ),
    "v2.type": _query("type", "Entity types to list (comma-separated), or the entity's type"),
    "v2.id": _query("id", "Entity ids (comma-separated)"),
    "v2.idPattern": _query("idPattern", "A regular expression on the entity id"),
    "v2.typePattern": _query("typePattern", "A regular expression on the entity type"),
    "v2.q": _query("q", "Simple Query Language filter on attribute values"),
    "v2.mq": _query("mq", "Simple Query Language filter on metadata"),
    "v2.georel": _query("georel", "near;maxDistance:…, coveredBy, intersects, equals, disjoint"),
    "v2.geometry": _query("geometry", "point, line, polygon or box"),
    "v2.coords": _query("coords", "lat,lon pairs separated by ';'"),
    "v2.attrs": _query("attrs", "Attributes to include (comma-separated)"),
    "v2.metadata": _query("metadata", "Metadata to include (comma-separated)"),
    "v2.orderBy": _query("orderBy", "Attributes to order by, comma-separated; '!' descending"),
    "v2.limit": _query("limit", "Page size (default 20)", {"type": "integer", "minimum": 1}),
    "v2.offset": _query("offset", "Page start", {"type": "integer", "minimum": 0}),
    "v2.path.entityId": _path("entityId", "The v2 entity id"),
    "v2.path.attrName": _path("attrName", "The attribute name"),
    "v2.path.subscriptionId": _path("subscriptionId", "The v2 subscription id"),
    "v2.path.registrationId": _path("registrationId", "The v2 registration id"),
    "v2.path.type": _path("type", "The entity type"),
}
HEADERS: dict[str, Schema] = {
    "Fiware-Total-Count": {
        "description": "The number of matching results, with options=count",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}
_ORION = {JSON: {"schema": ref("OrionError")}}
_V2_ERRORS = {
    "4XX": "An Orion error body naming what is wrong",
    "400": "BadRequest: a bad parameter, header or body",
    "404": "NotFound: no such entity, attribute, type or subscription",
    "406": "NotAcceptable: the Accept header names nothing the route offers",
    "411": "ContentLengthRequired",
    "413": "RequestEntityTooLarge",
    "415": "UnsupportedMediaType",
    "422": "Unprocessable: already exists, or attributes missing (a strict append still adds "
    "the new attributes, as Orion does)",
    "501": "NotImplemented: what city-os cannot do yet, and why",
    "503": "ServiceUnavailable: the database cannot be reached",
    "504": "GatewayTimeout: the configured @context could not be fetched",
}
RESPONSES: dict[str, Schema] = {
    f"v2.{status}": {"description": text, "content": _ORION} for status, text in _V2_ERRORS.items()
}
