"""Snapshots in the OpenAPI document (§5.16, §6.36-6.38).

Layer: snapshots/ (documentation, no I/O). Declares the routes of snapshots/api.py with the
Snapshot data type (§5.2.41) as city-os builds it (snapshots/model.py).
"""

from __future__ import annotations

from city_os.openapi.components import register
from city_os.openapi.declare import Paths, Schema, array, created, no_content, ok, ref

_QUERY: Schema = {"type": "object", "description": "A Query data type (§5.2.23)"}
SCHEMAS: dict[str, Schema] = {
    "Snapshot": {
        "type": "object",
        "description": "§5.2.41: the queries, their frozen results' status and the priority",
        "required": ["id", "type", "snapshotQueries", "snapshotStatus", "snapshotPriority"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": {"const": "Snapshot"},
            "snapshotQueries": array(_QUERY),
            "snapshotPriority": {"type": "integer", "minimum": 1},
            "snapshotStatus": {"enum": ["preparing", "success", "partial", "failed"]},
            "snapshotQueriesDetails": array(
                {
                    "type": "object",
                    "properties": {
                        "resultStatus": {"enum": ["success", "empty", "failed"]},
                        "entityCount": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                }
            ),
            "lastUsedAt": {"type": "string", "format": "date-time"},
            "createdAt": {"type": "string", "format": "date-time"},
            "modifiedAt": {"type": "string", "format": "date-time"},
        },
    },
    "SnapshotCreate": {
        "type": "object",
        "required": ["type", "snapshotQueries"],
        "properties": {
            "id": {"type": "string", "format": "uri"},
            "type": {"const": "Snapshot"},
            "snapshotQueries": array(_QUERY),
            "snapshotPriority": {"type": "integer", "minimum": 1},
        },
    },
    "SnapshotFragment": {
        "type": "object",
        "properties": {"snapshotPriority": {"type": "integer", "minimum": 1}},
    },
}
PARAMETERS: dict[str, Schema] = {
    "path.snapshotId": {
        "name": "snapshotId",
        "in": "path",
        "required": True,
        "description": "The Snapshot id (a URI)",
        "schema": {"type": "string", "minLength": 1},
    },
}
register(parameters=PARAMETERS, schemas=SCHEMAS)

snapshots = Paths("Snapshots", prefix="/ngsi-ld/v1/snapshots")
snapshots.post(
    "", "createSnapshot", "Create a Snapshot; its queries run in the background (§5.16.1)",
    body=ref("SnapshotCreate"), replies=(created(),), errors=(400, 409),
)  # fmt: skip
snapshots.get(
    "", "querySnapshots", "List the Snapshots, optionally those a q selects (§5.16.6)",
    params=("options", "q"), replies=(ok(array(ref("Snapshot")), "The Snapshots"),),
    errors=(400,),
)  # fmt: skip
snapshots.delete(
    "", "purgeSnapshots", "Delete the Snapshots a q over Snapshot members selects (§5.16.7)",
    params=("q",), replies=(no_content(),), errors=(400,),
)  # fmt: skip
snapshots.get(
    "/{snapshotId}", "retrieveSnapshot", "Retrieve a Snapshot and its status (§5.16.3)",
    params=("options",), replies=(ok(ref("Snapshot"), "The Snapshot"),), errors=(400, 404),
)  # fmt: skip
snapshots.patch(
    "/{snapshotId}", "updateSnapshot", "Change a Snapshot's priority (§5.16.4)",
    body=ref("SnapshotFragment"), replies=(ok(ref("Snapshot"), "The updated Snapshot"),),
    errors=(400, 404),
)  # fmt: skip
snapshots.delete(
    "/{snapshotId}", "deleteSnapshot", "Delete a Snapshot and its frozen copy (§5.16.5)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
snapshots.post(
    "/{snapshotId}/clone", "cloneSnapshot", "Copy a Snapshot's frozen data (§5.16.2)",
    body=ref("SnapshotFragment"), replies=(created(),), errors=(400, 404, 409),
)  # fmt: skip

TABLES = (snapshots,)
