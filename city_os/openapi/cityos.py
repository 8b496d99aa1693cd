"""Declarations of the city-os extension routes (``/cityos/v1/...``, the notification channels
included), the operations endpoints (``/metrics``, ``/health``, ``/ready``) and the
documentation itself (``/openapi.json``, ``/docs``).

Layer: openapi/. Operations under ``/cityos/v1`` carry ``x-cityos-extension: true``.
"""

from __future__ import annotations

from city_os.openapi.declare import (
    JSON,
    JSON_MEDIA,
    Paths,
    Reply,
    array,
    no_content,
    ok,
    ref,
)

schemas = Paths("Schema registry", prefix="/cityos/v1/schemas", extension=True)
_TYPE, _VERSION = "/{type}", "/{type}/versions/{version}"
_REPORT = ok(ref("DryRunReport"), "How many stored entities the schema would refuse", media=(JSON,))
schemas.post(
    "", "registerSchema", "Register a JSON Schema version for an entity type",
    body=ref("SchemaRegistration"),
    replies=(ok(ref("SchemaVersionInfo"), "Already registered: the same schema", media=(JSON,),
                headers=("Location",)),
             ok(ref("SchemaVersionInfo"), "A new version", status=201, media=(JSON,),
                headers=("Location",))),
    errors=(400,),
)  # fmt: skip
schemas.post(
    "/dryRun", "dryRunCandidate", "Check stored entities against an unregistered schema",
    params=("examples",), body=ref("SchemaRegistration"), replies=(_REPORT,), errors=(400,),
)  # fmt: skip
schemas.get(
    "", "listSchemas", "Entity types with schemas, and their versions",
    replies=(ok(array(ref("SchemaTypeSummary")), media=(JSON,)),),
)  # fmt: skip
schemas.get(
    _TYPE, "retrieveSchemaType", "One type's versions",
    replies=(ok(ref("SchemaTypeSummary"), media=(JSON,)),), errors=(404,),
)  # fmt: skip
schemas.delete(
    _TYPE, "deleteSchemaType", "Delete every version of a type's schema",
    replies=(no_content(),), errors=(404,),
)  # fmt: skip
schemas.get(
    _VERSION, "retrieveSchemaVersion", "One version: the schema and its @context",
    replies=(ok(ref("SchemaVersion"), media=(JSON,)),), errors=(404,),
)  # fmt: skip
schemas.delete(
    _VERSION, "deleteSchemaVersion", "Delete a version (409 while it is active)",
    replies=(no_content(),), errors=(404, 409),
)  # fmt: skip
schemas.post(
    _VERSION + "/dryRun", "dryRunVersion", "Stored entities a version would refuse",
    params=("examples",), replies=(_REPORT,), errors=(404,),
)  # fmt: skip
schemas.get(
    _TYPE + "/active", "retrieveActiveSchema", "The active version",
    replies=(ok(ref("SchemaVersion"), media=(JSON,)),), errors=(404,),
)  # fmt: skip
schemas.put(
    _TYPE + "/active", "activateSchema", "Activate a version: writes are validated with it",
    body=ref("SchemaActivation"), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
schemas.delete(
    _TYPE + "/active", "deactivateSchema", "Deactivate: writes of the type are not validated",
    replies=(no_content(),), errors=(404,),
)  # fmt: skip

indexes = Paths("Value indexes", prefix="/cityos/v1/indexes", extension=True)
indexes.post(
    "", "createValueIndex", "Index an attribute's values (built in the background)",
    body=ref("ValueIndexRequest"),
    replies=(ok(ref("ValueIndex"), "Exists already", media=(JSON,), headers=("Location",)),
             ok(ref("ValueIndex"), "Being built", status=202, media=(JSON,),
                headers=("Location",))),
    errors=(400,),
)  # fmt: skip
indexes.get("", "listValueIndexes", "The tenant's value indexes",
            replies=(ok(array(ref("ValueIndex")), media=(JSON,)),))  # fmt: skip
indexes.get("/{attribute}", "retrieveValueIndex", "One value index",
            replies=(ok(ref("ValueIndex"), media=(JSON,)),), errors=(404,))  # fmt: skip
indexes.delete("/{attribute}", "deleteValueIndex", "Drop a value index",
               replies=(no_content(),), errors=(404,))  # fmt: skip

access = Paths("Access", prefix="/cityos/v1", extension=True)
access.post(
    "/apikeys", "createApiKey", "Issue an API key (the secret is in the response, once)",
    body=ref("ApiKeyRequest"),
    replies=(ok(ref("ApiKey"), "Issued", status=201, media=(JSON,), headers=("Location",)),),
    errors=(400, 401, 403),
)  # fmt: skip
access.get("/apikeys", "listApiKeys", "The tenant's API keys (no secrets)",
           replies=(ok(array(ref("ApiKey")), media=(JSON,)),), errors=(401, 403))  # fmt: skip
access.get("/apikeys/{keyId}", "retrieveApiKey", "One API key",
           replies=(ok(ref("ApiKey"), media=(JSON,)),), errors=(401, 403, 404))  # fmt: skip
access.delete("/apikeys/{keyId}", "revokeApiKey", "Revoke an API key",
              replies=(no_content(),), errors=(401, 403, 404))  # fmt: skip
access.post(
    "/permissions", "createPermission", "Grant a permission",
    body=ref("PermissionRequest"),
    replies=(ok(ref("Permission"), "Granted", status=201, media=(JSON,), headers=("Location",)),),
    errors=(400, 401, 403),
)  # fmt: skip
access.get("/permissions", "listPermissions", "The tenant's permissions", params=("entity",),
           replies=(ok(array(ref("Permission")), media=(JSON,)),), errors=(401, 403))  # fmt: skip
access.get("/permissions/{permissionId}", "retrievePermission", "One permission",
           replies=(ok(ref("Permission"), media=(JSON,)),), errors=(401, 403, 404))  # fmt: skip
access.delete("/permissions/{permissionId}", "deletePermission", "Withdraw a permission",
              replies=(no_content(),), errors=(401, 403, 404))  # fmt: skip
access.put(
    "/dataSubjects/{entityId}", "putDataSubject", "Name the citizen an entity is about",
    body=ref("DataSubject"), replies=(no_content(),), errors=(400, 401, 403, 404),
)  # fmt: skip
access.get("/dataSubjects/{entityId}", "getDataSubject", "The data subject of an entity",
           replies=(ok(ref("DataSubject"), media=(JSON,)),), errors=(401, 403, 404))  # fmt: skip
access.delete("/dataSubjects/{entityId}", "deleteDataSubject",
              "The entity is no longer personal data", replies=(no_content(),),
              errors=(401, 403, 404))  # fmt: skip
access.get(
    "/audit", "auditLog",
    "The tenant's audit log, newest first: access changes and refused decisions (admins)",
    params=("auditAction", "auditActor", "auditResource", "since", "limit", "offset"),
    replies=(ok(array(ref("AuditEntry")), media=(JSON,)),), errors=(400, 401, 403),
)  # fmt: skip
access.get("/me", "whoAmI", "Who the broker takes the caller for",
           replies=(ok(ref("Principal"), media=(JSON,)),))  # fmt: skip
access.get(
    "/me/entities", "myEntities", "The entities the signed-in citizen is the subject of",
    params=("options", "limit", "offset"),
    replies=(ok(ref("EntityOutputList"), media=JSON_MEDIA),), errors=(401, 403),
)  # fmt: skip
access.get("/me/consents", "myConsents", "The consents the citizen gave",
           replies=(ok(array(ref("Consent")), media=(JSON,)),), errors=(401, 403))  # fmt: skip
access.post(
    "/me/consents", "grantConsent", "Grant a consent to a client",
    body=ref("ConsentRequest"),
    replies=(ok(ref("Consent"), "Granted", status=201, media=(JSON,), headers=("Location",)),),
    errors=(400, 401, 403),
)  # fmt: skip
access.get("/me/consents/{consentId}", "myConsent", "One consent",
           replies=(ok(ref("Consent"), media=(JSON,)),), errors=(401, 403, 404))  # fmt: skip
access.delete("/me/consents/{consentId}", "revokeConsent", "Revoke a consent, at once",
              replies=(no_content(),), errors=(401, 403, 404))  # fmt: skip
access.get(
    "/me/accessLog", "myAccessLog", "Reads of the citizen's entities under a consent",
    params=("limit", "offset"),
    replies=(ok(array(ref("AccessLogEntry")), media=(JSON,)),), errors=(401, 403),
)  # fmt: skip

notifications = Paths("Notification channels", prefix="/cityos/v1", extension=True)
notifications.get(
    "/webpush/key", "webPushKey", "The VAPID public key browsers subscribe to Web Push with",
    replies=(ok(ref("WebPushKey"), media=(JSON,)),),
)  # fmt: skip
notifications.get(
    "/subscriptions/{subscriptionId}/stream", "subscriptionStream",
    "Server-Sent Events of a urn:city-os:stream subscription (resume with Last-Event-ID)",
    replies=(ok({"type": "string"}, "One event per notification: id, event, data",
                media=("text/event-stream",)),),
    errors=(400, 404),
)  # fmt: skip

ops = Paths("Operations", extension=True, common=())
ops.get(
    "/metrics", "metrics", "Prometheus metrics",
    replies=(ok({"type": "string"}, media=("text/plain",)),),
)  # fmt: skip
ops.get("/health", "health", "Liveness: the process answers",
        replies=(ok(ref("Health"), media=(JSON,)),))  # fmt: skip
ops.get(
    "/ready", "ready", "Readiness: PostgreSQL (and Kafka, the notifier where required) up",
    replies=(ok(ref("Readiness"), media=(JSON,)),
             Reply(503, "Not ready", ref("Readiness"), (JSON,))),
)  # fmt: skip
ops.get("/openapi.json", "openapi", "This document (OpenAPI 3.1)",
        replies=(ok({"type": "object"}, media=(JSON,)),))  # fmt: skip
ops.get("/docs", "docs", "The document as a readable page (Swagger UI, served locally)",
        replies=(ok({"type": "string"}, media=("text/html",)),))  # fmt: skip
ops.get("/docs/{asset}", "docsAsset", "A file of the page (script, style sheet, icon)",
        replies=(ok({}, media=("*/*",)),), errors=(404,))  # fmt: skip

TABLES = (schemas, indexes, access, notifications, ops)  # ops last: the tests replace it
