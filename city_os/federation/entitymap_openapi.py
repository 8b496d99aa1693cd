"""EntityMaps in the OpenAPI document (§5.14, §6.32-6.34).

Layer: federation/ (documentation, no I/O). Declares the routes of api/entitymaps.py with the
EntityMap data type (§5.2.39).
"""

from __future__ import annotations

from city_os.openapi.components import register
from city_os.openapi.declare import Paths, Schema, array, no_content, ok, ref

SCHEMAS: dict[str, Schema] = {
    "EntityMap": {
        "type": "object",
        "description": "§5.2.39: entity id → the places holding it (@none: this broker, "
        "else registration ids)",
        "required": ["id", "type", "expiresAt", "entityMap"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": {"const": "EntityMap"},
            "expiresAt": {"type": "string", "format": "date-time"},
            "entityMap": {"type": "object", "additionalProperties": array({"type": "string"})},
        },
    },
    "EntityMapFragment": {
        "type": "object",
        "properties": {"expiresAt": {"type": "string", "format": "date-time"}},
    },
}
PARAMETERS: dict[str, Schema] = {
    "path.entityMapId": {
        "name": "entityMapId",
        "in": "path",
        "required": True,
        "description": "The EntityMap id (a URI)",
        "schema": {"type": "string", "minLength": 1},
    },
    "entityMapLifetime": {
        "name": "entityMapLifetime",
        "in": "query",
        "description": "ISO 8601 duration the map should live (the broker bounds it)",
        "schema": {"type": "string"},
    },
}
HEADERS: dict[str, Schema] = {
    "NGSILD-EntityMap": {
        "description": "URL of the EntityMap made for (or used by) the query (§6.3.22)",
        "schema": {"type": "string"},
    },
}
register(parameters=PARAMETERS, schemas=SCHEMAS, headers=HEADERS)

_QUERY = (
    "id", "type", "idPattern", "q", "csf", "georel", "geometry", "coordinates", "geoproperty",
    "scopeQ", "local", "attrs", "entityMapLifetime",
)  # fmt: skip

maps = Paths("EntityMaps", prefix="/ngsi-ld/v1/entityMaps")
maps.get(
    "", "createEntityMap", "Make an EntityMap for a query (§5.14.4)",
    params=_QUERY,
    replies=(ok(ref("EntityMap"), "The new EntityMap", status=201,
                headers=("NGSILD-EntityMap",)),),
    errors=(400,),
)  # fmt: skip
temporal_maps = Paths("EntityMaps", prefix="/ngsi-ld/v1/temporal/entityMaps")
temporal_maps.get(
    "", "createTemporalEntityMap", "Make an EntityMap for a temporal query (§5.14.5)",
    params=(*_QUERY, "timerel", "timeAt", "endTimeAt", "timeproperty"),
    replies=(ok(ref("EntityMap"), "The new EntityMap", status=201,
                headers=("NGSILD-EntityMap",)),),
    errors=(400,),
)  # fmt: skip
maps.get(
    "/{entityMapId}", "retrieveEntityMap", "Retrieve an EntityMap (§5.14.1)",
    replies=(ok(ref("EntityMap"), "The EntityMap"),), errors=(400, 404),
)  # fmt: skip
maps.patch(
    "/{entityMapId}", "updateEntityMap", "Update an EntityMap's expiry (§5.14.2)",
    body=ref("EntityMapFragment"), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
maps.delete(
    "/{entityMapId}", "deleteEntityMap", "Delete an EntityMap (§5.14.3)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

TABLES = (maps, temporal_maps)
