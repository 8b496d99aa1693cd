"""The Temporal API in the OpenAPI document (§5.6.11-5.6.16, §5.7.3-5.7.4, §6.18-6.22).

Layer: temporal/ (documentation, no I/O). Declares the routes of api/temporal.py with the
temporal data types of ETSI GS CIM 009 v1.9.1 as schemas: the Temporal Representation of an
Entity (§4.5.7, normalized instances), the Simplified one (§4.5.9, ``temporalValues``: one
``[value, time]`` pair per instance, under ``values``, ``objects``, ``languageMaps``, …), the
Aggregated one (§4.5.19, ``aggregatedValues``: one ``[value, start, end]`` triple per period and
method), and the TemporalQuery (§5.2.21). Operation ids are those of the ETSI OpenAPI document.
"""

from __future__ import annotations

from city_os.openapi.components import register
from city_os.openapi.declare import JSON_MEDIA, Paths, Schema, array, created, no_content, ok, ref
from city_os.temporal.params import AGGR_METHODS, TIME_COLUMNS, TIMERELS
from city_os.temporal.render import VALUES_KEY

_TIME = {"type": "string", "format": "date-time"}
_STRING = {"type": "string"}
_KINDS = sorted(VALUES_KEY)


def _query(name: str, description: str, schema: Schema = _STRING) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _path(name: str, description: str) -> Schema:
    schema = {"type": "string", "minLength": 1}
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}  # fmt: skip


_PAIR = {
    "type": "array",
    "description": "[value, time of the timeproperty]",
    "prefixItems": [{}, _TIME],
    "minItems": 2,
    "maxItems": 2,
}
_TRIPLE = {
    "type": "array",
    "description": "[aggregated value (null: no instance in the period), period start, end]",
    "prefixItems": [{}, _TIME, _TIME],
    "minItems": 3,
    "maxItems": 3,
}
_INSTANCE_MEMBERS: dict[str, Schema] = {
    "observedAt": _TIME, "createdAt": _TIME, "modifiedAt": _TIME, "deletedAt": _TIME,
    "datasetId": {"type": "string", "format": "uri"},
    "instanceId": {"type": "string", "format": "uri"},
    # city-os extension, with options=sysAttrs only (read-only): who recorded the instance
    "cityosactor": {"type": "string", "readOnly": True, "description": "city-os extension "
                    "(options=sysAttrs): the subject (oidc:<issuer>#<sub>) or API key "
                    "(apikey:<id>) that recorded this instance; absent for the broker itself "
                    "and with authentication off"},
    "cityosclient": {"type": "string", "readOnly": True, "description": "city-os extension "
                     "(options=sysAttrs): the OIDC client (azp) that recorded this instance"},
}  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "TemporalEntity": {
        "type": "object",
        "description": "A Temporal Representation of an Entity (§4.5.7), to create or upsert: "
        "each attribute is one instance or an array of instances (§5.6.11)",
        "required": ["id", "type"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": ref("EntityType"),
            "scope": {"type": ["string", "array"]},
            "@context": ref("LdContext"),
        },
        "additionalProperties": ref("AttributeOrList"),
    },
    "TemporalEntityFragment": {
        "type": "object",
        "description": "Attribute instances to add to a Temporal Representation (§5.6.12)",
        "properties": {"@context": ref("LdContext")},
        "additionalProperties": ref("AttributeOrList"),
    },
    "AttributeInstanceUpdate": {
        "description": "The new content of one instance (§5.6.13): the attribute under its "
        "name (as one instance or a one-item array), or the bare attribute",
        "anyOf": [ref("TemporalEntityFragment"), ref("Attribute")],
    },
    "AttributeInstanceOutput": {
        "type": "object",
        "description": "One attribute instance of the normalized temporal representation "
        "(§4.5.7); a deleted instance has the null URI as its value and a deletedAt",
        "required": ["type", "instanceId"],
        "properties": {"type": {"enum": _KINDS}, **_INSTANCE_MEMBERS},
    },
    "TemporalValues": {
        "type": "object",
        "description": "The Simplified Temporal Representation of an attribute (§4.5.9), "
        "options=temporalValues: the [value, time] pairs under the member of its kind",
        "required": ["type"],
        "properties": {
            "type": {"enum": _KINDS},
            "datasetId": {"type": "string", "format": "uri"},
            **{key: array(_PAIR) for key in sorted(set(VALUES_KEY.values()))},
        },
        "additionalProperties": False,
    },
    "AggregatedValues": {
        "type": "object",
        "description": "The Aggregated Temporal Representation of an attribute (§4.5.19), "
        "options=aggregatedValues: per aggrMethods method one triple per period",
        "required": ["type"],
        "properties": {
            "type": {"enum": _KINDS},
            "datasetId": {"type": "string", "format": "uri"},
            **{method: array(_TRIPLE) for method in AGGR_METHODS},
        },
        "additionalProperties": False,
    },
    "TemporalAttributeOutput": {
        "description": "An attribute of a temporal entity: its instances (normalized), or its "
        "temporalValues / aggregatedValues, one object per datasetId (an array for several)",
        "anyOf": [
            array(
                {
                    "anyOf": [
                        ref("AttributeInstanceOutput"),
                        ref("TemporalValues"),
                        ref("AggregatedValues"),
                    ]
                }
            ),
            ref("TemporalValues"),
            ref("AggregatedValues"),
        ],
    },
    "TemporalEntityOutput": {
        "type": "object",
        "description": "A temporal entity as rendered (§4.5.7, §4.5.9, §4.5.19), possibly "
        "projected by pick/omit (§4.21)",
        "properties": {
            "id": {"type": "string"},
            "type": ref("EntityType"),
            "scope": {"type": ["string", "array"]},
            "createdAt": _TIME,
            "modifiedAt": _TIME,
            "deletedAt": _TIME,
            "@context": ref("LdContext"),
        },
        "additionalProperties": ref("TemporalAttributeOutput"),
    },
    "TemporalQuery": {
        "type": "object",
        "description": "§5.2.21: which instances of the matched entities to return",
        "properties": {
            "timerel": {"enum": sorted(TIMERELS)},
            "timeAt": _TIME,
            "endTimeAt": _TIME,
            "timeproperty": {"enum": list(TIME_COLUMNS)},
            "lastN": {"type": "integer", "minimum": 1},
        },
    },
    "TemporalEntityQuery": {
        "description": "A Query (§5.2.23) with its temporalQ, and aggrParams for the "
        "aggregated representation (§6.24)",
        "allOf": [ref("Query")],
        "type": "object",
        "properties": {
            "temporalQ": ref("TemporalQuery"),
            "aggrParams": {
                "type": "object",
                "properties": {
                    "aggrMethods": {"type": ["string", "array"]},
                    "aggrPeriodDuration": _STRING,
                },
            },
        },
    },
}

_METHODS = ", ".join(AGGR_METHODS)
PARAMETERS: dict[str, Schema] = {
    "timerel": _query("timerel", "Temporal relationship (§4.11)", {"enum": sorted(TIMERELS)}),
    "timeAt": _query("timeAt", "DateTime of the temporal query (§4.11)", _TIME),
    "endTimeAt": _query("endTimeAt", "End DateTime, with timerel=between (§4.11)", _TIME),
    "timeproperty": _query(
        "timeproperty",
        "The time the query applies to (default observedAt)",
        {"enum": list(TIME_COLUMNS)},
    ),
    "lastN": _query(
        "lastN", "Only the last n instances per attribute", {"type": "integer", "minimum": 1}
    ),
    "aggrMethods": _query("aggrMethods", f"Aggregation methods, comma-separated: {_METHODS}"),
    "aggrPeriodDuration": _query(
        "aggrPeriodDuration", "ISO 8601 duration of each period (default: the whole range)"
    ),
    "temporalOptions": _query(
        "options", "temporalValues, aggregatedValues, sysAttrs (comma-separated)"
    ),
    "temporalFormat": _query(
        "format", "Representation", {"enum": ["normalized", "temporalValues", "aggregatedValues"]}
    ),
    "path.entity_id": _path("entity_id", "The entity id (a URI)"),
    "path.attr": _path("attr", "The attribute name (a term of the @context or an IRI)"),
    "path.instance_id": _path("instance_id", "The instanceId of the attribute instance (a URI)"),
}
HEADERS: dict[str, Schema] = {
    "Content-Range": {
        "description": "With 206: the time range of the instances returned (§6.3.10), "
        "date-time <start>-<end>/<size>",
        "schema": _STRING,
    },
}
register(parameters=PARAMETERS, headers=HEADERS, schemas=SCHEMAS)

_TEMPORAL = (
    "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods",
    "aggrPeriodDuration", "temporalOptions", "temporalFormat", "attrs", "pick", "omit", "lang",
    "datasetId",
)  # fmt: skip
_QUERY = (
    "id", "type", "idPattern", "q", "csf", "georel", "geometry", "coordinates", "geoproperty",
    "scopeQ", "local", "limit", "offset", "count", "expandValues", "via", "orderBy", "entityMap",
    "entityMapLifetime",
)  # fmt: skip
_CSV = (
    (
        "text/csv",
        {
            "type": "string",
            "description": "One row per instance (entityId,attribute,datasetId,time,value) or, "
            "aggregated, per period and method (entityId,attribute,datasetId,method,start,end,"
            "value), after a header row; with options=sysAttrs the instance rows have two more "
            "columns actor,client (city-os audit: who recorded each instance)",
        },
    ),
)
_ONE = ref("TemporalEntityOutput")
_MANY = array(ref("TemporalEntityOutput"))
_PAGED = ("NGSILD-Results-Count", "Link")
_CUT = "Some instances were left out (lastN, or the broker's limit): Content-Range says which"

temporal = Paths("Temporal", prefix="/ngsi-ld/v1/temporal")
temporal.get(
    "/entities", "queryTemporal", "Query the temporal evolution of entities (§5.7.4)",
    params=(*_QUERY, *_TEMPORAL),
    replies=(ok(_MANY, "The page of temporal entities", headers=_PAGED, other_media=_CSV),
             ok(_MANY, _CUT, status=206, headers=(*_PAGED, "Content-Range"),
                other_media=_CSV)),
    errors=(400, 403, 406),
)  # fmt: skip
temporal.post(
    "/entityOperations/query", "temporalQueryBatch",
    "Query the temporal evolution of entities with a Query body (§5.7.4, §6.24)",
    params=("limit", "offset", "count", "temporalOptions", "temporalFormat"),
    body=ref("TemporalEntityQuery"),
    replies=(ok(_MANY, "The page of temporal entities", headers=_PAGED, other_media=_CSV),
             ok(_MANY, _CUT, status=206, headers=(*_PAGED, "Content-Range"),
                other_media=_CSV)),
    errors=(400, 403, 406),
)  # fmt: skip
temporal.post(
    "/entities", "upsertTemporal", "Create or update the temporal representation (§5.6.11)",
    body=ref("TemporalEntity"),
    replies=(created(), no_content("The entity existed: the instances were added")),
    errors=(400, 415),
)  # fmt: skip
temporal.get(
    "/entities/{entity_id}", "retrieveTemporal", "The temporal representation (§5.7.3)",
    params=("typeFilter", "local", "csf", "via", "entityMap", "entityMapLifetime", *_TEMPORAL),
    replies=(ok(_ONE, "The temporal entity", other_media=_CSV),
             ok(_ONE, _CUT, status=206, headers=("Content-Range",), other_media=_CSV)),
    errors=(400, 404, 406),
)  # fmt: skip
temporal.delete(
    "/entities/{entity_id}", "deleteTemporal",
    "Delete the temporal representation, and the entity (§5.6.16)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
temporal.post(
    "/entities/{entity_id}/attrs", "appendAttrsTemporal",
    "Add attribute instances (§5.6.12)",
    body=ref("TemporalEntityFragment"), replies=(no_content(),), errors=(400, 404, 415),
)  # fmt: skip
temporal.delete(
    "/entities/{entity_id}/attrs/{attr}", "deleteAttrsTemporal",
    "Delete an attribute's instances (§5.6.14)",
    params=("attrDatasetId", "deleteAll"), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
temporal.patch(
    "/entities/{entity_id}/attrs/{attr}/{instance_id}", "updateAttrsTemporal",
    "Modify an attribute instance (§5.6.13)",
    body=ref("AttributeInstanceUpdate"), body_media=JSON_MEDIA,
    replies=(no_content(),), errors=(400, 404, 415),
)  # fmt: skip
temporal.delete(
    "/entities/{entity_id}/attrs/{attr}/{instance_id}", "deleteAttrInstanceTemporal",
    "Delete an attribute instance (§5.6.15)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

TABLES = (temporal,)
