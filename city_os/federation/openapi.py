"""Context source registrations in the OpenAPI document (§5.9, §5.10, §6.8-6.9).

Layer: federation/ (documentation, no I/O). Declares the routes of api/csource.py with the
CSourceRegistration data type (§5.2.9) as schemas. Operation ids are those of the ETSI
OpenAPI document.
"""

from __future__ import annotations

from city_os.federation.model import GROUPS, MODES, OPERATIONS
from city_os.openapi.components import register
from city_os.openapi.declare import (
    JSON_MEDIA,
    MERGE_PATCH,
    Paths,
    Schema,
    array,
    created,
    no_content,
    ok,
    ref,
)

_TIME = {"type": "string", "format": "date-time"}
_URI = {"type": "string", "format": "uri"}
_NAMES = array({"type": "string"})
_INTERVAL = {
    "type": "object",
    "required": ["startAt"],
    "properties": {"startAt": _TIME, "endAt": _TIME},
}
_MEMBERS: dict[str, Schema] = {
    "id": _URI,
    "type": {"const": "ContextSourceRegistration"},
    "registrationName": {"type": "string"},
    "description": {"type": "string"},
    "information": array(ref("RegistrationInfo")),
    "tenant": {"type": "string"},
    "observationInterval": _INTERVAL,
    "managementInterval": _INTERVAL,
    "location": ref("Geometry"),
    "observationSpace": ref("Geometry"),
    "operationSpace": ref("Geometry"),
    "expiresAt": _TIME,
    "endpoint": _URI,
    "contextSourceInfo": array(
        {
            "type": "object",
            "required": ["key", "value"],
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
        }
    ),
    "scope": {"anyOf": [{"type": "string"}, _NAMES]},
    "mode": {"enum": list(MODES)},
    "operations": array({"enum": sorted(OPERATIONS | set(GROUPS))}),
    "refreshRate": {"type": "string", "description": "ISO 8601 duration"},
    "management": {
        "type": "object",
        "description": "§5.2.34 RegistrationManagementInfo",
        "properties": {
            "localOnly": {"type": "boolean"},
            "cacheDuration": {"type": "string", "description": "ISO 8601 duration"},
            "timeout": {"type": "number", "exclusiveMinimum": 0},
            "cooldown": {"type": "number", "exclusiveMinimum": 0},
        },
    },
}
SCHEMAS: dict[str, Schema] = {
    "RegistrationInfo": {
        "type": "object",
        "description": "§5.2.10",
        "properties": {
            "entities": array(
                {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "id": _URI,
                        "idPattern": {"type": "string"},
                        "type": {"anyOf": [{"type": "string"}, _NAMES]},
                    },
                }
            ),
            "propertyNames": _NAMES,
            "relationshipNames": _NAMES,
        },
    },
    "CSourceRegistration": {
        "type": "object",
        "description": "§5.2.9; members the data type does not define are context source "
        "properties",
        "examples": [
            {
                "type": "ContextSourceRegistration",
                "information": [{"entities": [{"type": "Shelter"}]}],
                "endpoint": "http://127.0.0.1:9/ngsi-ld/v1",
            }
        ],
        "required": ["type", "information", "endpoint"],
        "properties": {**_MEMBERS, "@context": ref("LdContext")},
    },
    "CSourceRegistrationFragment": {
        "type": "object",
        "description": "Members of a CSourceRegistration to change (§5.9.3); null removes one",
        "properties": {"@context": ref("LdContext")},
    },
    "CSourceRegistrationOutput": {
        "type": "object",
        "required": ["id", "type", "information", "endpoint"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "ContextSourceRegistration"},
            "endpoint": {"type": "string"},
            "information": {"type": "array"},
            "status": {"enum": ["ok", "failed"]},
            "timesSent": {"type": "integer"},
            "timesFailed": {"type": "integer"},
            "lastSuccess": _TIME,
            "lastFailure": _TIME,
            "createdAt": _TIME,
            "modifiedAt": _TIME,
        },
    },
}
PARAMETERS: dict[str, Schema] = {
    "path.registrationId": {
        "name": "registrationId",
        "in": "path",
        "required": True,
        "description": "The registration id (a URI)",
        "schema": {"type": "string", "minLength": 1},
    },
    "registrationOptions": {
        "name": "options",
        "in": "query",
        "description": "sysAttrs: add createdAt and modifiedAt",
        "schema": {"type": "string"},
    },
    "subscription": {
        "name": "subscription",
        "in": "query",
        "required": True,
        "description": "The id of the distributed Subscription whose registrations changed",
        "schema": {"type": "string", "minLength": 1},
    },
}
register(parameters=PARAMETERS, schemas=SCHEMAS)

_QUERY = (
    "id", "type", "idPattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
    "geoproperty", "timerel", "timeAt", "endTimeAt", "timeproperty", "scopeQ", "limit", "offset",
    "count", "registrationOptions",
)  # fmt: skip
_PAGED = ("NGSILD-Results-Count", "Link")

registrations = Paths("Context Source Registrations", prefix="/ngsi-ld/v1/csourceRegistrations")
registrations.post(
    "", "createCSourceRegistration", "Register a context source (§5.9.2)",
    body=ref("CSourceRegistration"), replies=(created(),), errors=(400, 409, 415),
)  # fmt: skip
registrations.get(
    "", "queryCSourceRegistrations", "Discover context source registrations (§5.10.2)",
    params=_QUERY,
    replies=(ok(array(ref("CSourceRegistrationOutput")), "The page of registrations",
                headers=_PAGED),),
    errors=(400, 406),
)  # fmt: skip
registrations.get(
    "/{registrationId}", "retrieveCSourceRegistration",
    "Retrieve a context source registration (§5.10.1)",
    params=("registrationOptions",),
    replies=(ok(ref("CSourceRegistrationOutput"), "The registration"),), errors=(400, 404, 406),
)  # fmt: skip
registrations.patch(
    "/{registrationId}", "updateCSourceRegistration",
    "Update a context source registration (§5.9.3)",
    body=ref("CSourceRegistrationFragment"), body_media=(*JSON_MEDIA, MERGE_PATCH),
    replies=(no_content(),), errors=(400, 404, 409),
)  # fmt: skip
registrations.delete(
    "/{registrationId}", "deleteCSourceRegistration",
    "Delete a context source registration (§5.9.4)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

subscriptions = Paths(
    "Context Source Registration Subscriptions", prefix="/ngsi-ld/v1/csourceSubscriptions"
)
subscriptions.post(
    "", "createCSourceRegistrationSubscription",
    "Subscribe to context source registrations (§5.11.2); temporalQ selects on their "
    "observationInterval / managementInterval",
    body=ref("Subscription"), replies=(created(),), errors=(400, 409),
)  # fmt: skip
subscriptions.get(
    "", "queryCSourceRegistrationSubscriptions",
    "Query context source registration subscriptions (§5.11.5)",
    params=("limit", "offset", "count", "registrationOptions"),
    replies=(ok(array(ref("SubscriptionOutput")), "The page of subscriptions", headers=_PAGED),),
)  # fmt: skip
subscriptions.get(
    "/{subscriptionId}", "retrieveCSourceRegistrationSubscription",
    "Retrieve a context source registration subscription (§5.11.4)",
    params=("registrationOptions",),
    replies=(ok(ref("SubscriptionOutput"), "The subscription"),), errors=(400, 404),
)  # fmt: skip
subscriptions.patch(
    "/{subscriptionId}", "updateCSourceRegistrationSubscription",
    "Update a context source registration subscription (§5.11.3)",
    body=ref("SubscriptionFragment"), body_media=(*JSON_MEDIA, MERGE_PATCH),
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
subscriptions.delete(
    "/{subscriptionId}", "deleteCSourceRegistrationSubscription",
    "Delete a context source registration subscription (§5.11.6)",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

# The notification endpoints of what this broker creates at context sources and for itself
# (api/remote_notify.py, federation/distributed_subscriptions.py).
_NOTIFICATION = {
    "type": "object",
    "description": "§5.3.1 Notification of a Subscription copy at a context source",
    "required": ["type", "subscriptionId", "data"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "Notification"},
        "subscriptionId": {"type": "string", "description": "the copy's id at the source"},
        "data": array({"type": "object"}),
    },
}
relayed = Paths("Distributed subscriptions", prefix="/ngsi-ld/ex", extension=True)
relayed.post(
    "/remote-notify", "relayRemoteNotification",
    "A context source notifies a copy of a local Subscription; relayed to its subscriber "
    "(§5.8.1.4, §5.8.6)",
    body=_NOTIFICATION, replies=(ok(None, "Stored for the subscriber"),), errors=(400, 404),
)  # fmt: skip
relayed.post(
    "/csource-notify", "registrationsChanged",
    "The watch of a distributed Subscription: registrations changed (§5.11.2); the "
    "Subscription is forwarded again where needed",
    params=("subscription",), body={"type": "object"}, replies=(no_content(),), errors=(400,),
)  # fmt: skip

TABLES = (registrations, subscriptions, relayed)
