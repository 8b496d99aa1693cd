"""Reusable parts of the document: parameters, headers and error responses (§6.3, §5.5.2).

Layer: openapi/. ``Paths`` declarations name these by key; ``components()`` renders them with
the schemas of ``ngsild_types`` and ``cityos_types``. A room with parameters, headers, schemas or
error responses of its own adds them with ``register(...)`` next to its declarations (a name
already taken is refused, so two rooms never silently replace each other's component).
"""

from __future__ import annotations

from typing import Any

from city_os.openapi import cityos_types, ngsild_types
from city_os.openapi.declare import JSON, Schema, array, ref

_STRING = {"type": "string"}
_FLAG = {"type": "string", "enum": ["true", "false"]}


def _query(name: str, description: str, schema: Schema = _STRING, **extra: Any) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _csv(name: str, description: str) -> Schema:
    return _query(name, description + " (comma-separated)", _STRING)


def _path(name: str, description: str, schema: Schema = _STRING) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {**schema, "minLength": 1} if schema.get("type") == "string" else schema,
    }


PARAMETERS: dict[str, Schema] = {
    "Link": {
        "name": "Link",
        "in": "header",
        "description": "The JSON-LD @context of the request (§6.3.5): "
        '<url>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',
        "schema": _STRING,
    },
    "NGSILD-Tenant": {
        "name": "NGSILD-Tenant",
        "in": "header",
        "description": "The tenant (§4.14, §6.3.14); absent: the default tenant. A write "
        "creates the tenant; a read of an unknown one is 404 NonexistentTenant",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:/-]{1,64}$"},
    },
    "Prefer": {
        "name": "Prefer",
        "in": "header",
        "description": "ngsi-ld=<major>.<minor>: the version of the representation (§6.3.18)",
        "schema": _STRING,
    },
    "id": _csv("id", "Entity ids"),
    "type": _query("type", "Entity type selection (§4.17): names joined by , ; | and ( )"),
    "typeFilter": _query("type", "Only if the entity has this type"),
    "idPattern": _query("idPattern", "A regular expression on the entity id"),
    "attrs": _csv("attrs", "Attribute names to select"),
    "pick": _csv("pick", "Members to keep in the representation (§4.21)"),
    "omit": _csv("omit", "Members to leave out of the representation (§4.21)"),
    "q": _query(
        "q", "Query language expression (§4.9); blanks between tokens are ignored (flow > 10)"
    ),
    "csf": _query("csf", "Context source filter (§4.8)"),
    "georel": _query("georel", "Geo-relationship (§4.10): near;maxDistance==…, within, …"),
    "geometry": _query("geometry", "Reference geometry type: Point, Polygon, …"),
    "coordinates": _query("coordinates", "Reference geometry coordinates, JSON"),
    "geoproperty": _query("geoproperty", "GeoProperty the geo-query applies to"),
    "geometryProperty": _query("geometryProperty", "GeoProperty of GeoJSON features"),
    "lang": _query("lang", "Language preference for LanguageProperties (§4.15)"),
    "scopeQ": _query("scopeQ", "Scope query (§4.19)"),
    "datasetId": _csv("datasetId", "Dataset ids"),
    "local": _query("local", "Local entities only (no federation)", _FLAG),
    "options": _csv(
        "options",
        "Representation and behaviour options: keyValues, concise, normalized, sysAttrs, "
        "noOverwrite, update, replace",
    ),
    "format": _query("format", "Representation: normalized, concise, keyValues"),
    "limit": _query("limit", "Page size (§5.5.9)", {"type": "integer", "minimum": 0}),
    "offset": _query("offset", "Page start (§5.5.9)", {"type": "integer", "minimum": 0}),
    "count": _query("count", "Send NGSILD-Results-Count", _FLAG),
    "orderBy": _csv("orderBy", "Attributes to order by (§4.24, §5.2.43)"),
    "collation": _query("collation", "Collation of the ordering"),
    "orderFrom": _query("orderFrom", "Reference coordinates of a distance ordering"),
    "orderGeometry": _query("orderGeometry", "Reference geometry of a distance ordering"),
    "join": _query("join", "Linked entity retrieval (§4.5.23): flat, inline, @none"),
    "joinLevel": _query("joinLevel", "Depth of join", {"type": "integer", "minimum": 0}),
    "containedBy": _csv("containedBy", "Entity ids already seen by a join"),
    "expandValues": _csv("expandValues", "Attributes whose string values are expanded"),
    "entityMap": _query("entityMap", "Use an EntityMap (federation)", _FLAG),
    "contextSourceIdentity": _query("contextSourceIdentity", "Federation: the source"),
    "via": _query("via", "Federation loop detection"),
    "keep": _csv("keep", "Attributes to keep when purging"),
    "drop": _csv("drop", "Attributes to delete when purging"),
    "deleteAll": _query("deleteAll", "Delete every instance of the attribute", _FLAG),
    "attrDatasetId": _query("datasetId", "The instance of the attribute"),
    "details": _query("details", "Detailed information instead of a list", _FLAG),
    "kind": _query("kind", "Kind of @context", {"enum": ["Hosted", "Cached", "ImplicitlyCreated"]}),
    "reload": _query("reload", "Refresh a cached @context instead of deleting it", _FLAG),
    "examples": _query(
        "examples", "How many refused entities to show", {"type": "integer", "minimum": 0}
    ),
    "entity": _query("entity", "Only the permissions on this entity id"),
    "auditAction": _query(
        "action",
        "Only this action (permission.created, access.refused, …); a trailing . "
        "matches a family (access.)",
    ),
    "auditActor": _query("actor", "Only changes or refusals of this actor (cityosactor form)"),
    "auditResource": _query("resource", "Only this resource: an id, or METHOD /path"),
    "since": _query(
        "since",
        "Only entries at or after this date-time",
        {"type": "string", "format": "date-time"},
    ),
    "path.entityId": _path("entityId", "The entity id (a URI)"),
    "path.attrId": _path("attrId", "The attribute name (a term of the @context or an IRI)"),
    "path.subscriptionId": _path("subscriptionId", "The subscription id (a URI)"),
    "path.contextId": _path("contextId", "A local id or a URL-encoded @context URL"),
    "path.type": _path("type", "An entity type: a term of the @context or a URL-encoded IRI"),
    "path.version": _path(
        "version", "A schema version", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    ),
    "path.attribute": _path("attribute", "An attribute: a term or a URL-encoded IRI"),
    "path.keyId": _path("keyId", "An API key id"),
    "path.consentId": _path("consentId", "A consent id"),
    "path.permissionId": _path("permissionId", "A permission id"),
    "path.asset": _path("asset", "A file of the documentation page"),
}

HEADERS: dict[str, Schema] = {
    "Location": {"description": "The URL of the created resource", "schema": _STRING},
    "NGSILD-Results-Count": {
        "description": "The number of matching results, with count=true (§6.3.13)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Link": {
        "description": "The @context of the body (§6.3.5), and with pages the prev/next "
        'links (rel="prev", rel="next", §5.5.9)',
        "schema": _STRING,
    },
    "Preference-Applied": {"description": "The version served (§6.3.18)", "schema": _STRING},
}

_PROBLEM = {JSON: {"schema": ref("ProblemDetails")}}
_NAMED = {
    400: "BadRequestData or InvalidRequest",
    401: "Unauthorized: no or a bad credential",
    403: "AccessDenied, or TooManyResults for a limit over the maximum",
    404: "ResourceNotFound, or NonexistentTenant",
    405: "MethodNotAllowed",
    406: "NotAcceptable: the Accept header names nothing the route offers",
    408: "RequestTimeout: the body arrived too slowly",
    409: "AlreadyExists, or a conflicting state",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "OperationNotSupported",
    429: "TooManyRequests",
}
RESPONSES: dict[str, Schema] = {
    "4XX": {"description": "A ProblemDetails naming what is wrong (§5.5.2)", "content": _PROBLEM},
    "503": {
        "description": "ServiceUnavailable: the database cannot be reached",
        "content": _PROBLEM,
    },
    "504": {
        "description": "LdContextNotAvailable: a remote @context could not be fetched",
        "content": _PROBLEM,
    },
    **{str(s): {"description": d, "content": _PROBLEM} for s, d in _NAMED.items()},
}


SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An OIDC access token of a configured issuer (CITYOS_OIDC_ISSUERS)",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
# Without authentication (CITYOS_AUTH_ENABLED=false) no credential is needed; with it, reads
# may be anonymous where permissions allow.
SECURITY: list[dict[str, list[str]]] = [{}, {"bearer": []}, {"apiKey": []}]


SCHEMAS: dict[str, Schema] = {}  # the rooms' own schemas (temporal/, ngsiv2/, …)


def register(
    *,
    parameters: dict[str, Schema] | None = None,
    headers: dict[str, Schema] | None = None,
    schemas: dict[str, Schema] | None = None,
    responses: dict[str, Schema] | None = None,
) -> None:
    """Add a room's components; a name already in use is a ValueError."""
    taken = {**ngsild_types.SCHEMAS, **cityos_types.SCHEMAS, **SCHEMAS}
    for kind, table, known, new in (
        ("parameters", PARAMETERS, PARAMETERS, parameters),
        ("headers", HEADERS, HEADERS, headers),
        ("schemas", SCHEMAS, taken, schemas),
        ("responses", RESPONSES, RESPONSES, responses),
    ):
        for name, value in (new or {}).items():
            if name in known and known[name] != value:
                raise ValueError(f"components.{kind}.{name} is already defined")
            table[name] = value


def components() -> dict[str, Any]:
    schemas: dict[str, Schema] = {**ngsild_types.SCHEMAS, **cityos_types.SCHEMAS, **SCHEMAS}
    schemas["EntityOutputList"] = array(ref("EntityOutput"))
    return {
        "schemas": schemas,
        "parameters": PARAMETERS,
        "headers": HEADERS,
        "responses": RESPONSES,
        "securitySchemes": SECURITY_SCHEMES,
    }
