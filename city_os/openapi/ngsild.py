"""Declarations of the NGSI-LD routes (ETSI GS CIM 009 v1.9.1 §6): entities, batch operations,
queries, subscriptions, discovery, @contexts and the source identity.

Layer: openapi/. One ``Paths`` table per resource family; operation ids follow the ETSI
OpenAPI document (cim/ngsi-ld-openapi) where it names the operation.
"""

from __future__ import annotations

from city_os.openapi.declare import (
    GEOJSON,
    JSON,
    JSON_MEDIA,
    MERGE_PATCH,
    Paths,
    array,
    created,
    no_content,
    ok,
    ref,
)

_ENTITY_MEDIA = (*JSON_MEDIA, GEOJSON)
_ENTITY_OUT = {"anyOf": [ref("EntityOutput"), ref("Feature")]}
_ENTITIES_OUT = {"anyOf": [ref("EntityOutputList"), ref("FeatureCollection")]}
_PAGED = ("NGSILD-Results-Count", "Link")
_UPDATED = ok(ref("UpdateResult"), "Some attributes were not updated", status=207, media=(JSON,))
_BATCH_ERRORS = ok(
    ref("BatchOperationResult"), "Some entities failed (each with its error)", status=207,
    media=(JSON,),
)  # fmt: skip
_RENDER = ("options", "format", "attrs", "pick", "omit", "lang", "geometryProperty", "datasetId")
QUERY = (
    "id", "type", "idPattern", "q", "csf", "georel", "geometry", "coordinates", "geoproperty",
    "scopeQ", "local", "limit", "offset", "count", "orderBy", "collation", "orderFrom",
    "orderGeometry", "join", "joinLevel", "containedBy", "expandValues", "entityMap",
    "contextSourceIdentity", "via",
)  # fmt: skip
PURGE = (
    "id", "type", "idPattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
    "geoproperty", "scopeQ", "datasetId", "local", "keep", "drop", "expandValues",
)  # fmt: skip

entities = Paths("Entities", prefix="/ngsi-ld/v1")
entities.post(
    "/entities", "createEntity", "Create an entity (§5.6.1)",
    body=ref("Entity"), replies=(created(),), errors=(400, 409, 415),
)  # fmt: skip
for method in ("PUT", "PATCH"):
    entities.add(
        method, "/entities", f"{method.lower()}EntitiesWithoutId",
        f"{method} without an entity id: always 400 BadRequestData",
        replies=(), errors=(400,),
    )  # fmt: skip
entities.get(
    "/entities", "queryEntity", "Query entities (§5.7.2)",
    params=(*QUERY, *_RENDER),
    replies=(ok(_ENTITIES_OUT, "The page of entities", media=_ENTITY_MEDIA, headers=_PAGED),),
    errors=(400, 403, 406),
)  # fmt: skip
entities.delete(
    "/entities", "purgeEntities", "Purge entities, or some of their attributes (§5.6.21)",
    params=PURGE, replies=(no_content(),), errors=(400,),
)  # fmt: skip
entities.get(
    "/entities/{entityId}", "retrieveEntity", "Retrieve an entity (§5.7.1)",
    params=("typeFilter", *_RENDER, "join", "joinLevel", "Prefer", "local", "entityMap",
            "entityMapLifetime"),
    replies=(ok(_ENTITY_OUT, "The entity", media=_ENTITY_MEDIA, headers=("NGSILD-EntityMap",)),),
    errors=(400, 404, 406),
)  # fmt: skip
entities.put(
    "/entities/{entityId}", "replaceEntity", "Replace an entity (§5.6.18)",
    body=ref("EntityFragment"), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.patch(
    "/entities/{entityId}", "mergeEntity", "Merge an entity (§5.6.17, JSON merge patch)",
    body=ref("EntityFragment"), body_media=(*JSON_MEDIA, MERGE_PATCH),
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.delete(
    "/entities/{entityId}", "deleteEntity", "Delete an entity (§5.6.6)",
    params=("typeFilter",), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.post(
    "/entities/{entityId}/attrs", "appendAttrs", "Append attributes (§5.6.3)",
    params=("options", "typeFilter"), body=ref("EntityFragment"),
    replies=(no_content("Every attribute was appended"), _UPDATED), errors=(400, 404),
)  # fmt: skip
entities.patch(
    "/entities/{entityId}/attrs", "updateAttrs", "Update attributes (§5.6.2)",
    params=("typeFilter",), body=ref("EntityFragment"),
    body_media=(*JSON_MEDIA, MERGE_PATCH),
    replies=(no_content("Every attribute was updated"), _UPDATED), errors=(400, 404),
)  # fmt: skip
entities.patch(
    "/entities/{entityId}/attrs/{attrId}", "partialAttrUpdate",
    "Partial attribute update (§5.6.4)",
    params=("typeFilter",), body=ref("EntityFragment"),
    body_media=(*JSON_MEDIA, MERGE_PATCH), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.put(
    "/entities/{entityId}/attrs/{attrId}", "replaceAttrs", "Replace an attribute (§5.6.19)",
    body=ref("Attribute"), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
entities.delete(
    "/entities/{entityId}/attrs/{attrId}", "removeAttr", "Delete an attribute (§5.6.5)",
    params=("attrDatasetId", "deleteAll", "typeFilter"), replies=(no_content(),),
    errors=(400, 404),
)  # fmt: skip

batch = Paths("Batch operations", prefix="/ngsi-ld/v1/entityOperations")
batch.post(
    "/create", "batchEntityCreation", "Create entities (§5.6.7)",
    body=array(ref("Entity")),
    replies=(ok(ref("EntityIdList"), "Every entity was created", status=201, media=(JSON,)),
             _BATCH_ERRORS),
    errors=(400,),
)  # fmt: skip
batch.post(
    "/upsert", "batchEntityUpsert", "Create or update entities (§5.6.8)",
    params=("options",), body=array(ref("Entity")),
    replies=(ok(ref("EntityIdList"), "Ids of the entities created", status=201, media=(JSON,)),
             no_content("Every entity existed and was updated"), _BATCH_ERRORS),
    errors=(400,),
)  # fmt: skip
batch.post(
    "/update", "batchEntityUpdate", "Update entities (§5.6.9)",
    params=("options",), body=array(ref("Entity")),
    replies=(no_content(), _BATCH_ERRORS), errors=(400,),
)  # fmt: skip
batch.post(
    "/merge", "batchEntityMerge", "Merge entities (§5.6.20)",
    body=array(ref("Entity")), replies=(no_content(), _BATCH_ERRORS), errors=(400,),
)  # fmt: skip
batch.post(
    "/delete", "batchEntityDelete", "Delete entities (§5.6.10)",
    body=ref("EntityIdList"), replies=(no_content(), _BATCH_ERRORS), errors=(400,),
)  # fmt: skip
batch.post(
    "/query", "queryBatch", "Query entities with a Query body (§5.7.2, §6.23)",
    params=("options", "format", "lang", "limit", "offset", "count", "geometryProperty"),
    body=ref("Query"),
    replies=(ok(_ENTITIES_OUT, "The page of entities", media=_ENTITY_MEDIA,
                headers=("NGSILD-Results-Count",)),),
    errors=(400, 403, 406),
)  # fmt: skip

subscriptions = Paths("Subscriptions", prefix="/ngsi-ld/v1/subscriptions")
subscriptions.post(
    "", "createSubscription", "Create a subscription (§5.8.1)",
    body=ref("Subscription"), replies=(created(),), errors=(400, 409),
)  # fmt: skip
subscriptions.get(
    "", "querySubscription", "Query subscriptions (§5.8.4)",
    params=("limit", "offset", "count", "options"),
    replies=(ok(array(ref("SubscriptionOutput")), "The page of subscriptions", headers=_PAGED),),
)  # fmt: skip
subscriptions.get(
    "/{subscriptionId}", "retrieveSubscription", "Retrieve a subscription (§5.8.3)",
    params=("options", "Prefer"),
    replies=(ok(ref("SubscriptionOutput"), "The subscription"),), errors=(404,),
)  # fmt: skip
subscriptions.patch(
    "/{subscriptionId}", "updateSubscription", "Update a subscription (§5.8.2)",
    body=ref("SubscriptionFragment"), body_media=(*JSON_MEDIA, MERGE_PATCH),
    replies=(no_content(),), errors=(400, 404),
)  # fmt: skip
subscriptions.delete(
    "/{subscriptionId}", "removeSubscription", "Delete a subscription (§5.8.5)",
    replies=(no_content(),), errors=(404,),
)  # fmt: skip

discovery = Paths("Discovery", prefix="/ngsi-ld/v1")
discovery.get(
    "/types", "retrieveEntityTypes", "Available entity types (§5.7.5, §5.7.6)",
    params=("details", "local", "count"),
    replies=(ok({"anyOf": [ref("EntityTypeList"), array(ref("EntityTypeDetails"))]}),),
)  # fmt: skip
discovery.get(
    "/types/{type}", "retrieveEntityTypeInfo", "Details of an entity type (§5.7.7)",
    params=("local",), replies=(ok(ref("EntityTypeInfo")),), errors=(404,),
)  # fmt: skip
discovery.get(
    "/attributes", "retrieveAttrTypes", "Available attributes (§5.7.8, §5.7.9)",
    params=("details", "local", "count"),
    replies=(ok({"anyOf": [ref("AttributeList"), array(ref("AttributeInfo"))]}),),
)  # fmt: skip
discovery.get(
    "/attributes/{attrId}", "retrieveAttrTypeInfo", "Details of an attribute (§5.7.10)",
    params=("local",), replies=(ok(ref("AttributeInfo")),), errors=(404,),
)  # fmt: skip

contexts = Paths("@context", prefix="/ngsi-ld/v1/jsonldContexts", common=("NGSILD-Tenant",))
contexts.post(
    "", "addContext", "Add an @context to serve (§5.13.2)",
    body=ref("LdContextDocument"), replies=(created(),), errors=(400, 409),
)  # fmt: skip
contexts.get(
    "", "listContexts", "List the @contexts served or cached (§5.13.3)",
    params=("details", "kind"),
    replies=(ok({"anyOf": [array({"type": "string"}), array(ref("LdContextInfo"))]},
                media=(JSON,)),),
)  # fmt: skip
contexts.get(
    "/{contextId}", "serveContext", "Serve an @context, or its details (§5.13.4)",
    params=("details",),
    replies=(ok({"anyOf": [ref("LdContextDocument"), ref("LdContextInfo")]}),),
    errors=(404,),
)  # fmt: skip
contexts.delete(
    "/{contextId}", "deleteContext", "Delete or reload an @context (§5.13.5)",
    params=("reload",), replies=(no_content(),), errors=(400, 404),
)  # fmt: skip

info = Paths("Information", prefix="/ngsi-ld/v1/info", common=("NGSILD-Tenant",))
info.get(
    "/sourceIdentity", "retrieveSourceIdentity", "The broker's identity (§5.15.1)",
    replies=(ok(ref("ContextSourceIdentity")),),
)  # fmt: skip

TABLES = (entities, batch, subscriptions, discovery, contexts, info)
