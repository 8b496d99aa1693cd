"""The NGSI-LD data types of ETSI GS CIM 009 v1.9.1 (§5.2) as OpenAPI 3.1 (JSON Schema 2020-12).

Layer: openapi/. Request schemas describe the normalized form the spec defines (an attribute is
an object with a ``type``); response schemas are looser on purpose where the spec's options
change the shape (keyValues, concise, pick/omit may drop ``id`` and ``type``), so that a
response is never judged against a form the client did not ask for.
"""

from __future__ import annotations

from city_os.openapi.declare import Schema, array, ref

_URI = {"type": "string", "format": "uri"}
_TIME = {"type": "string", "format": "date-time"}
_NAMES = array({"type": "string"})
_POSITION = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}
_RING = {"type": "array", "items": _POSITION, "minItems": 4}


def _geometry(kind: str, coordinates: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {"type": {"const": kind}, "coordinates": coordinates, "bbox": _NAMES},
    }


def _attribute(kind: str, required: str, value: Schema, **extra: Schema) -> Schema:
    properties: dict[str, Schema] = {
        "type": {"const": kind},
        required: value,
        "observedAt": _TIME,
        "datasetId": _URI,
        "createdAt": _TIME,
        "modifiedAt": _TIME,
        "deletedAt": _TIME,
        "instanceId": _URI,
        **extra,
    }
    return {
        "type": "object",
        "description": f"An NGSI-LD {kind} (§5.2.{_CLAUSE[kind]}); members other than the "
        "listed ones are sub-attributes",
        "required": ["type", required],
        "properties": properties,
        # A sub-attribute is an attribute too; described one level deep, since a recursive
        # schema makes generated examples (fuzzing, docs) explode in size and time.
        "additionalProperties": {"$ref": "#/components/schemas/SubAttribute"},
    }


_CLAUSE = {
    "Property": "5",
    "Relationship": "6",
    "GeoProperty": "7",
    "LanguageProperty": "32",
    "VocabProperty": "35",
    "ListProperty": "36",
    "ListRelationship": "37",
    "JsonProperty": "38",
}
_GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
_ANY_VALUE = {"not": {"type": "null"}}
_LANG_MAP = {"type": "object", "additionalProperties": {"type": ["string", "array"]}}

SCHEMAS: dict[str, Schema] = {
    "ProblemDetails": {
        "type": "object",
        "description": "An NGSI-LD error (§5.5.2, IETF RFC 9457)",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
    "LdContext": {
        "description": "A JSON-LD @context: a URL, an object, or a list of them",
        "type": ["string", "object", "array"],
    },
    "EntityType": {"description": "A type name or a list of them", "type": ["string", "array"]},
    "Point": _geometry("Point", _POSITION),
    "MultiPoint": _geometry("MultiPoint", array(_POSITION)),
    "LineString": _geometry("LineString", {**array(_POSITION), "minItems": 2}),
    "MultiLineString": _geometry("MultiLineString", array({**array(_POSITION), "minItems": 2})),
    "Polygon": _geometry("Polygon", array(_RING)),
    "MultiPolygon": _geometry("MultiPolygon", array(array(_RING))),
    "Geometry": {
        "description": "A GeoJSON geometry (IETF RFC 7946 §3.1)",
        "anyOf": [ref(n) for n in _GEOMETRIES],
    },
    "Property": _attribute("Property", "value", _ANY_VALUE, unitCode={"type": "string"}),
    "Relationship": _attribute(
        "Relationship", "object", {"type": ["string", "array"]}, objectType=ref("EntityType")
    ),
    "GeoProperty": _attribute("GeoProperty", "value", ref("Geometry")),
    "LanguageProperty": _attribute("LanguageProperty", "languageMap", _LANG_MAP),
    "VocabProperty": _attribute("VocabProperty", "vocab", {"type": ["string", "array"]}),
    "JsonProperty": _attribute("JsonProperty", "json", _ANY_VALUE),
    "ListProperty": _attribute("ListProperty", "valueList", {"type": "array"}),
    "ListRelationship": _attribute("ListRelationship", "objectList", {"type": "array"}),
    "SubAttribute": {
        "type": "object",
        "description": "A sub-attribute: an attribute (§4.5.4), with a type among the above",
        "required": ["type"],
        "properties": {"type": {"enum": list(_CLAUSE)}},
    },
    "Attribute": {
        "anyOf": [ref(n) for n in _CLAUSE],
        "examples": [{"type": "Property", "value": 7, "observedAt": "2026-12-01T09:00:00Z"}],
    },
    "AttributeOrList": {
        "description": "An attribute, or several instances of it with distinct datasetIds",
        "anyOf": [ref("Attribute"), {**array(ref("Attribute")), "minItems": 1}],
    },
    "Entity": {
        "type": "object",
        "description": "An NGSI-LD Entity in the normalized form (§5.2.4)",
        "required": ["id", "type"],
        "properties": {
            "id": _URI,
            "type": ref("EntityType"),
            "scope": {"type": ["string", "array"]},
            "@context": ref("LdContext"),
            "location": ref("GeoProperty"),
            "observationSpace": ref("GeoProperty"),
            "operationSpace": ref("GeoProperty"),
        },
        "additionalProperties": ref("AttributeOrList"),
        "examples": [
            {
                "id": "urn:ngsi-ld:WaterObserved:saga-001",
                "type": "WaterObserved",
                "flow": {
                    "type": "Property",
                    "value": 12.5,
                    "unitCode": "MQS",
                    "observedAt": "2026-11-26T10:00:00Z",
                },
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [130.2988, 33.2494]},
                },
            }
        ],
    },
    "EntityFragment": {
        "type": "object",
        "description": "Attributes of an Entity, to append, update or merge (§5.4)",
        "properties": {"@context": ref("LdContext"), "type": ref("EntityType")},
        "additionalProperties": ref("AttributeOrList"),
        "examples": [{"flow": {"type": "Property", "value": 14.0, "unitCode": "MQS"}}],
    },
    "EntityOutput": {
        "type": "object",
        "description": "An Entity as rendered: normalized, concise or keyValues (§4.5), "
        "possibly projected by pick/omit (§4.21)",
        "properties": {"id": {"type": "string"}, "type": ref("EntityType")},
    },
    "Feature": {
        "type": "object",
        "required": ["type", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "string"},
            "geometry": {"type": ["object", "null"]},
            "properties": {"type": "object"},
            "@context": ref("LdContext"),
        },
    },
    "FeatureCollection": {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": array(ref("Feature")),
            "@context": ref("LdContext"),
        },
    },
    "AttributeValueOutput": {"description": "An attribute as rendered (or its bare value)"},
    "EntitySelector": {
        "type": "object",
        "description": "§5.2.33",
        "properties": {"id": _URI, "idPattern": {"type": "string"}, "type": {"type": "string"}},
    },
    "GeoQuery": {
        "type": "object",
        "description": "§5.2.13",
        "required": ["geometry", "coordinates", "georel"],
        "properties": {
            "geometry": {"type": "string"},
            "coordinates": {"type": ["array", "string"]},
            "georel": {"type": "string"},
            "geoproperty": {"type": "string"},
        },
    },
    "Query": {
        "type": "object",
        "examples": [{"type": "Query", "entities": [{"type": "WaterObserved"}], "q": "flow>10"}],
        "description": "A Query (§5.2.23), the body of POST /entityOperations/query",
        "required": ["type"],
        "properties": {
            "type": {"const": "Query"},
            "entities": array(ref("EntitySelector")),
            "attrs": _NAMES,
            "pick": _NAMES,
            "omit": _NAMES,
            "q": {"type": "string"},
            "geoQ": ref("GeoQuery"),
            "csf": {"type": "string"},
            "scopeQ": {"type": "string"},
            "lang": {"type": "string"},
            "ordering": {"type": "object"},
            "containedBy": {"type": ["array", "string"]},
            "join": {"type": "string"},
            "joinLevel": {"type": "integer"},
            "datasetId": _NAMES,
            "@context": ref("LdContext"),
        },
    },
    "UpdateResult": {
        "type": "object",
        "description": "§5.2.18: the attributes updated and those not updated, with why",
        "required": ["updated", "notUpdated"],
        "properties": {
            "updated": _NAMES,
            "notUpdated": array(
                {
                    "type": "object",
                    "required": ["attributeName", "reason"],
                    "properties": {
                        "attributeName": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                }
            ),
        },
    },
    "BatchEntityError": {
        "type": "object",
        "description": (
            "§5.2.17. After a batch update with noOverwrite, the error of an entity also carries"
            " the UpdateResult members (§5.2.18) updated and notUpdated, and the entity stays"
            " under success when some of it was written"
        ),
        "required": ["entityId", "error"],
        "properties": {"entityId": {}, "error": ref("ProblemDetails")},
    },
    "BatchOperationResult": {
        "type": "object",
        "description": "§5.2.16: the entities written, and each refused one with its error",
        "required": ["success", "errors"],
        "properties": {"success": _NAMES, "errors": array(ref("BatchEntityError"))},
    },
    "EntityIdList": {
        **array(_URI),
        "description": "Ids of entities (batch delete)",
        "examples": [["urn:ngsi-ld:FuzzPoint:2", "urn:ngsi-ld:WaterObserved:none"]],
    },
    "Endpoint": {
        "type": "object",
        "description": "§5.2.15",
        "required": ["uri"],
        "properties": {
            "uri": _URI,
            "accept": {"type": "string"},
            "timeout": {"type": "number"},
            "cooldown": {"type": "number"},
            "receiverInfo": array({"type": "object"}),
            "notifierInfo": array({"type": "object"}),
        },
    },
    "NotificationParams": {
        "type": "object",
        "description": "§5.2.14",
        "required": ["endpoint"],
        "properties": {
            "attributes": _NAMES,
            "format": {"type": "string"},
            "endpoint": ref("Endpoint"),
            "status": {"type": "string"},
            "timesSent": {"type": "integer"},
            "timesFailed": {"type": "integer"},
            "lastNotification": _TIME,
            "lastSuccess": _TIME,
            "lastFailure": _TIME,
            "showChanges": {"type": "boolean"},
            "sysAttrs": {"type": "boolean"},
        },
    },
    "Subscription": {
        "type": "object",
        "examples": [
            {
                "type": "Subscription",
                "entities": [{"type": "WaterObserved"}],
                "watchedAttributes": ["flow"],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
            }
        ],
        "description": "§5.2.12",
        "required": ["type", "notification"],
        "properties": {
            "id": _URI,
            "type": {"const": "Subscription"},
            "subscriptionName": {"type": "string"},
            "description": {"type": "string"},
            "entities": array(ref("EntitySelector")),
            "watchedAttributes": _NAMES,
            "notificationTrigger": _NAMES,
            "timeInterval": {"type": "number"},
            "q": {"type": "string"},
            "geoQ": ref("GeoQuery"),
            "csf": {"type": "string"},
            "isActive": {"type": "boolean"},
            "notification": ref("NotificationParams"),
            "expiresAt": _TIME,
            "throttling": {"type": "number"},
            "scopeQ": {"type": "string"},
            "lang": {"type": "string"},
            "splitEntities": {"type": "boolean"},  # §5.8.6: filters stay here
            "localOnly": {"type": "boolean"},  # §5.8.1.4: not forwarded to sources
            "status": {"type": "string"},
            "@context": ref("LdContext"),
        },
    },
    "SubscriptionFragment": {
        "type": "object",
        "description": "Members of a Subscription to change (§5.8.2)",
        "properties": {"@context": ref("LdContext")},
    },
    "SubscriptionOutput": {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"id": {"type": "string"}, "type": {"const": "Subscription"}},
    },
    "EntityTypeList": {
        "type": "object",
        "description": "§5.2.24",
        "required": ["id", "type", "typeList"],
        "properties": {
            "id": _URI,
            "type": {"const": "EntityTypeList"},
            "typeList": _NAMES,
        },
    },
    "EntityTypeDetails": {
        "type": "object",
        "description": "§5.2.25",
        "required": ["id", "type", "typeName"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "EntityType"},
            "typeName": {"type": "string"},
            "attributeNames": _NAMES,
        },
    },
    "EntityTypeInfo": {
        "type": "object",
        "description": "§5.2.26",
        "required": ["id", "type", "typeName", "entityCount"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "EntityTypeInfo"},
            "typeName": {"type": "string"},
            "entityCount": {"type": "integer"},
            "attributeDetails": array({"type": "object"}),
        },
    },
    "AttributeList": {
        "type": "object",
        "description": "§5.2.27",
        "required": ["id", "type", "attributeList"],
        "properties": {
            "id": _URI,
            "type": {"const": "AttributeList"},
            "attributeList": _NAMES,
        },
    },
    "AttributeInfo": {
        "type": "object",
        "description": "§5.2.28",
        "required": ["id", "type", "attributeName"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "Attribute"},
            "attributeName": {"type": "string"},
            "attributeCount": {"type": "integer"},
            "attributeTypes": _NAMES,
            "typeNames": _NAMES,
        },
    },
    "ContextSourceIdentity": {
        "type": "object",
        "description": "§5.2.40",
        "required": ["id", "type", "contextSourceAlias", "contextSourceUptime"],
        "properties": {
            "id": _URI,
            "type": {"const": "ContextSourceIdentity"},
            "contextSourceAlias": {"type": "string"},
            "contextSourceUptime": {"type": "string"},
            "contextSourceTimeAt": _TIME,
            "contextSourceExtras": {"type": "object"},
        },
    },
    "LdContextDocument": {
        "type": "object",
        "required": ["@context"],
        "properties": {"@context": ref("LdContext")},
    },
    "LdContextInfo": {
        "type": "object",
        "description": "§5.2.41: an @context the broker serves or caches",
        "required": ["URL", "localId", "kind"],
        "properties": {
            "URL": {"type": "string"},
            "localId": {"type": "string"},
            "kind": {"enum": ["Hosted", "Cached", "ImplicitlyCreated"]},
            "createdAt": _TIME,
            "lastUsage": _TIME,
            "numberOfHits": {"type": "integer"},
        },
    },
}
