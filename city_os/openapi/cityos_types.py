"""Schemas of the city-os extensions (not in ETSI GS CIM 009): schema registry, value indexes,
API keys, permissions, consents, data subjects, the caller, and the operations endpoints.

Layer: openapi/. Each schema is the body the matching handler in api/ writes or reads.
"""

from __future__ import annotations

from city_os.openapi.declare import Schema, array, ref

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_NAMES = array({"type": "string"})
_STRING_OR_NULL = {"type": ["string", "null"]}


def _object(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


SCHEMAS: dict[str, Schema] = {
    "SchemaRegistration": {
        **_object(
            ["type", "schema"],
            type={"type": "string", "description": "entity type: a term or an IRI"},
            schema={"type": "object", "description": "a JSON Schema of the keyValues form"},
            activate={"type": "boolean"},
        ),
        "properties": {
            "type": {"type": "string"},
            "schema": {"type": "object"},
            "activate": {"type": "boolean"},
            "@context": ref("LdContext"),
        },
        "additionalProperties": False,
        "examples": [
            {
                "type": "https://city-os.jp/ns/FuzzPoint",
                "schema": {"type": "object", "properties": {"level": {"type": "number"}}},
            }
        ],
    },
    "SchemaVersionInfo": _object(
        ["type", "typeIri", "version", "active", "createdAt"],
        type={"type": "string"},
        typeIri={"type": "string"},
        version={"type": "integer", "minimum": 1},
        active={"type": "boolean"},
        createdAt={"type": "string"},
    ),
    "SchemaVersion": {
        "allOf": [ref("SchemaVersionInfo")],
        "type": "object",
        "required": ["schema"],
        "properties": {"schema": {"type": "object"}, "@context": ref("LdContext")},
    },
    "SchemaTypeSummary": _object(
        ["type", "typeIri", "activeVersion", "versions"],
        type={"type": "string"},
        typeIri={"type": "string"},
        activeVersion={"type": ["integer", "null"]},
        versions=array(
            _object(
                ["version", "active", "createdAt"],
                version={"type": "integer"},
                active={"type": "boolean"},
                createdAt={"type": "string"},
            )
        ),
    ),
    "SchemaActivation": {
        **_object(["version"], version={"type": "integer", "minimum": 1}),
        "additionalProperties": False,
    },
    "DryRunReport": _object(
        ["typeIri", "checked", "invalid", "examples"],
        typeIri={"type": "string"},
        version={"type": ["integer", "null"]},
        checked={"type": "integer"},
        invalid={"type": "integer"},
        examples=array(
            _object(["id", "violations"], id={"type": "string"}, violations={"type": "array"})
        ),
    ),
    "ValueIndexRequest": {
        **_object(
            ["attribute"],
            attribute={"type": "string"},
            kind={"enum": ["number"]},
        ),
        "properties": {
            "attribute": {"type": "string"},
            "kind": {"enum": ["number"]},
            "@context": ref("LdContext"),
        },
        "additionalProperties": False,
        "examples": [{"attribute": "https://uri.etsi.org/ngsi-ld/default-context/level"}],
    },
    "ValueIndex": _object(
        ["attribute", "attributeIri", "kind", "status", "createdAt"],
        attribute={"type": "string"},
        attributeIri={"type": "string"},
        kind={"type": "string"},
        status={"enum": ["building", "ready", "failed"]},
        createdAt={"type": "string"},
        error={"type": "string"},
    ),
    "ApiKeyRequest": _object(
        ["name", "operations"],
        name={"type": "string"},
        operations=_NAMES,
        types=_NAMES,
        origin={"type": "string"},
        expiresAt=_TIME,
    ),
    "ApiKey": _object(
        ["id", "name", "operations", "createdAt"],
        id={"type": "string"},
        name={"type": "string"},
        operations=_NAMES,
        types={"type": ["array", "null"], "items": {"type": "string"}},
        origin=_STRING_OR_NULL,
        createdBy=_STRING_OR_NULL,
        createdAt=_TIME_OR_NULL,
        expiresAt=_TIME_OR_NULL,
        revokedAt=_TIME_OR_NULL,
        lastUsedAt=_TIME_OR_NULL,
        key={"type": "string", "description": "the secret: only in the creation response"},
    ),
    "PermissionRequest": _object(
        ["assignee", "action", "target"],
        assignee={"type": "object"},
        action={"type": "string"},
        target={"type": "object"},
        personal={"type": "boolean"},
    ),
    "Permission": _object(
        ["id", "assignee", "action", "target"],
        id={"type": "string"},
        assignee={"type": "object"},
        action={"type": "string"},
        target={"type": "object"},
        personal={"type": "boolean"},
        createdBy={},
        createdAt={},
    ),
    "ConsentRequest": _object(
        ["client", "types", "purpose"],
        client={"type": "string"},
        types=_NAMES,
        purpose={"type": "string"},
        expiresAt=_TIME,
    ),
    "Consent": _object(
        ["id", "client", "types", "purpose", "valid"],
        id={"type": "string"},
        client={"type": "string"},
        types=_NAMES,
        purpose={"type": "string"},
        createdAt=_TIME_OR_NULL,
        expiresAt=_TIME_OR_NULL,
        revokedAt=_TIME_OR_NULL,
        valid={"type": "boolean"},
    ),
    "DataSubject": {
        **_object(["issuer", "subject"], issuer={"type": "string"}, subject={"type": "string"}),
        "additionalProperties": False,
    },
    "Principal": _object(
        ["subject", "tenant", "roles", "anonymous"],
        subject=_STRING_OR_NULL,
        issuer=_STRING_OR_NULL,
        client=_STRING_OR_NULL,
        tenant={"type": "string"},
        roles=_NAMES,
        operator={"type": "boolean"},
        groups=_NAMES,
        apiKey=_STRING_OR_NULL,
        citizen={"type": "boolean"},
        anonymous={"type": "boolean"},
        authenticationOff={"type": "boolean"},
    ),
    "AccessLogEntry": {"type": "object"},
    "AuditEntry": _object(
        ["at", "actor", "action", "resource", "detail"],
        at=_TIME,
        actor={"type": "string", "description": "who acted or was refused (cityosactor form)"},
        action={"type": "string", "description": "permission.created, access.refused, …"},
        resource={"type": "string", "description": "an id, or METHOD /path of a refusal"},
        detail={"type": "object", "description": "what changed, or status and reason"},
    ),
    "WebPushKey": _object(
        ["publicKey"],
        publicKey={
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]+$",
            "description": "the VAPID public key (uncompressed P-256 point, base64url)",
        },
    ),
    "Health": _object(["status"], status={"const": "ok"}),
    "Readiness": _object(
        ["status", "components"],
        status={"enum": ["ready", "not ready"]},
        components={"type": "object", "additionalProperties": {"type": "object"}},
    ),
}
