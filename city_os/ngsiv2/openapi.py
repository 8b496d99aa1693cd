"""The NGSIv2 face in the OpenAPI document: /v2/..., /version and /statistics.

Layer: ngsiv2/ (documentation, no I/O). Declares the routes of entities.py, ops.py,
subscriptions_api.py and registrations.py with the v2 types of ``openapi_types``; the tables use
``face="v2."``, so path parameters and error answers are the v2 components (Orion's
``{"error", "description"}`` bodies, never ProblemDetails). Operation ids are prefixed ``v2``
(Orion publishes none).
"""

from __future__ import annotations

from city_os.ngsiv2 import openapi_types
from city_os.openapi.components import register
from city_os.openapi.declare import JSON, Paths, array, created, no_content, ok, ref

register(
    parameters=openapi_types.PARAMETERS,
    headers=openapi_types.HEADERS,
    schemas=openapi_types.SCHEMAS,
    responses=openapi_types.RESPONSES,
)

_FIWARE = ("Fiware-Service", "Fiware-ServicePath")
_J = (JSON,)
_TEXT = "text/plain"
_COUNTED = ("Fiware-Total-Count",)
_LIST = ("v2.limit", "v2.offset", "v2.orderBy", "v2.options", "v2.attrs", "v2.metadata")
_FILTER = (
    "v2.id", "v2.type", "v2.idPattern", "v2.typePattern", "v2.q", "v2.mq", "v2.georel",
    "v2.geometry", "v2.coords",
)  # fmt: skip
_ONE = ("v2.type",)  # the type the entity of the URL must have
_OUT = ("v2.type", "v2.attrs", "v2.metadata", "v2.options")
_ENTITIES = ok(array(ref("V2EntityOutput")), "The page of entities", media=_J, headers=_COUNTED)

entities = Paths("NGSIv2 entities", prefix="/v2", common=_FIWARE, face="v2.")
entities.get(
    "/entities", "v2ListEntities", "List entities",
    params=(*_FILTER, *_LIST), replies=(_ENTITIES,), errors=(400,),
)  # fmt: skip
entities.post(
    "/entities", "v2CreateEntity", "Create an entity (options=upsert: or update it)",
    params=("v2.options",), body=ref("V2EntityInput"), body_media=_J,
    replies=(created(), no_content("options=upsert: the entity existed and was updated")),
    errors=(400, 411, 413, 415, 422),
)  # fmt: skip
for method in ("PUT", "PATCH"):
    entities.add(
        method, "/entities", f"v2{method.capitalize()}EntitiesWithoutId",
        f"{method} without an entity id: always 400 BadRequest", errors=(400,),
    )  # fmt: skip
entities.get(
    "/entities/{entityId}", "v2RetrieveEntity", "Retrieve an entity",
    params=_OUT, replies=(ok(ref("V2EntityOutput"), "The entity", media=_J),),
    errors=(400, 404),
)  # fmt: skip
entities.delete(
    "/entities/{entityId}", "v2RemoveEntity", "Remove an entity",
    params=_ONE, replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.get(
    "/entities/{entityId}/attrs", "v2RetrieveEntityAttributes", "The attributes of an entity",
    params=_OUT, replies=(ok(ref("V2AttributesOutput"), "The attributes", media=_J),),
    errors=(400, 404),
)  # fmt: skip
entities.post(
    "/entities/{entityId}/attrs", "v2UpdateOrAppendEntityAttributes",
    "Append or update attributes (options=append: 422 if one exists)",
    params=("v2.type", "v2.options"), body=ref("V2Attributes"), body_media=_J,
    replies=(no_content(),), errors=(400, 404, 415, 422),
)  # fmt: skip
entities.patch(
    "/entities/{entityId}/attrs", "v2UpdateExistingEntityAttributes",
    "Update existing attributes (422 if one is missing, nothing written)",
    params=("v2.type", "v2.options"), body=ref("V2Attributes"), body_media=_J,
    replies=(no_content(),), errors=(400, 404, 415, 422),
)  # fmt: skip
entities.put(
    "/entities/{entityId}/attrs", "v2ReplaceAllEntityAttributes", "Replace every attribute",
    params=("v2.type", "v2.options"), body=ref("V2Attributes"), body_media=_J,
    replies=(no_content(),), errors=(400, 404, 415),
)  # fmt: skip
_ATTR = "/entities/{entityId}/attrs/{attrName}"
entities.get(
    _ATTR, "v2GetAttributeData", "One attribute",
    params=("v2.type", "v2.metadata"), replies=(ok(ref("V2Attribute"), media=_J),),
    errors=(400, 404),
)  # fmt: skip
entities.put(
    _ATTR, "v2UpdateAttributeData", "Replace an existing attribute",
    params=_ONE, body=ref("V2Attribute"), body_media=_J, replies=(no_content(),),
    errors=(400, 404, 415),
)  # fmt: skip
entities.delete(
    _ATTR, "v2RemoveASingleAttribute", "Remove an attribute",
    params=_ONE, replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
_VALUE_MEDIA = ((JSON, {"type": ["object", "array"]}), (_TEXT, {"type": "string"}))
entities.get(
    _ATTR + "/value", "v2GetAttributeValue",
    "An attribute's value: objects and arrays as JSON, other values as text/plain",
    params=_ONE,
    replies=(ok({"description": "The value (a bare string in text/plain)"},
                media=(JSON, _TEXT)),),
    errors=(400, 404, 406),
)  # fmt: skip
entities.put(
    _ATTR + "/value", "v2UpdateAttributeValue",
    "A new value (the attribute keeps its type and metadata)",
    params=_ONE, body_by_media=_VALUE_MEDIA, replies=(no_content(),), errors=(400, 404, 415),
)  # fmt: skip

ops = Paths("NGSIv2 operations", prefix="/v2", common=_FIWARE, face="v2.")
ops.post(
    "/op/update", "v2Update", "Batch update: append, appendStrict, update, replace, delete",
    params=("v2.options",), body=ref("V2BatchUpdate"), body_media=_J,
    replies=(no_content(),), errors=(400, 404, 415, 422),
)  # fmt: skip
ops.post(
    "/op/query", "v2Query", "Batch query",
    params=("v2.limit", "v2.offset", "v2.orderBy", "v2.options"), body=ref("V2BatchQuery"),
    body_media=_J, replies=(_ENTITIES,), errors=(400, 415),
)  # fmt: skip
ops.get(
    "/types", "v2ListEntityTypes", "Entity types (options=values: their names only)",
    params=("v2.limit", "v2.offset", "v2.options"),
    replies=(ok(array({"anyOf": [ref("V2EntityType"), {"type": "string"}]}), media=_J,
                headers=_COUNTED),),
    errors=(400,),
)  # fmt: skip
ops.get(
    "/types/{type}", "v2RetrieveEntityType", "One entity type",
    replies=(ok(ref("V2EntityType"), media=_J),), errors=(400, 404),
)  # fmt: skip
ops.get("", "v2RetrieveAPIResources", "The v2 entry point",
        replies=(ok(ref("V2EntryPoint"), media=_J),), common=())  # fmt: skip

broker = Paths("NGSIv2 broker", common=(), face="v2.")
broker.get("/version", "v2Version", "Orion-compatible version information",
           replies=(ok(ref("V2Version"), media=_J),))  # fmt: skip
broker.get("/statistics", "v2Statistics", "Orion-compatible statistics",
           replies=(ok(ref("V2Statistics"), media=_J),))  # fmt: skip

subscriptions = Paths(
    "NGSIv2 subscriptions", prefix="/v2/subscriptions", common=_FIWARE, face="v2."
)
subscriptions.post(
    "", "v2CreateSubscription", "Create a subscription (an NGSI-LD one with a v2 face)",
    body=ref("V2Subscription"), body_media=_J, replies=(created(),), errors=(400, 415),
)  # fmt: skip
subscriptions.get(
    "", "v2ListSubscriptions", "List subscriptions (those made through NGSI-LD too)",
    params=("v2.limit", "v2.offset", "v2.options"),
    replies=(ok(array(ref("V2SubscriptionOutput")), media=_J, headers=_COUNTED),),
    errors=(400,),
)  # fmt: skip
subscriptions.get(
    "/{subscriptionId}", "v2RetrieveSubscription", "One subscription",
    replies=(ok(ref("V2SubscriptionOutput"), media=_J),), errors=(400, 404),
)  # fmt: skip
subscriptions.patch(
    "/{subscriptionId}", "v2UpdateSubscription", "Change members of a v2 subscription",
    body=ref("V2SubscriptionFragment"), body_media=_J, replies=(no_content(),),
    errors=(400, 404, 415),
)  # fmt: skip
subscriptions.delete(
    "/{subscriptionId}", "v2DeleteSubscription", "Delete a subscription",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

registrations = Paths(
    "NGSIv2 registrations", prefix="/v2/registrations", common=_FIWARE, face="v2."
)
registrations.get(
    "", "v2ListRegistrations",
    "List registrations (the NGSI-LD context source registrations of the tenant, in v2 form)",
    params=("v2.limit", "v2.offset", "v2.options"),
    replies=(ok(array({"type": "object"}), media=_J, headers=_COUNTED),), errors=(400,),
)  # fmt: skip
registrations.post(
    "", "v2CreateRegistration",
    "Create a registration (stored as an NGSI-LD context source registration)",
    body={"type": "object"}, body_media=_J, replies=(created(),), errors=(400,),
)  # fmt: skip
registrations.get(
    "/{registrationId}", "v2RetrieveRegistration", "Retrieve a registration",
    replies=(ok({"type": "object"}, media=_J),), errors=(400, 404),
)  # fmt: skip
registrations.patch(
    "/{registrationId}", "v2UpdateRegistration", "Update a registration",
    body={"type": "object"}, body_media=_J, replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
registrations.delete(
    "/{registrationId}", "v2DeleteRegistration", "Delete a registration",
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

TABLES = (entities, ops, broker, subscriptions, registrations)
