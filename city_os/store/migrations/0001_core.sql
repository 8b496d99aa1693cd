-- Global objects shared by all tenants: the tenant registry, stored @contexts and the outbox.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE SCHEMA IF NOT EXISTS cityos;

CREATE TABLE IF NOT EXISTS cityos.tenants (
    name        text PRIMARY KEY,          -- NGSILD-Tenant value ('' = default tenant)
    schema_name text NOT NULL UNIQUE,      -- generated, never taken verbatim from the request
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- /ngsi-ld/v1/jsonldContexts (§5.13): hosted and cached @context documents.
CREATE TABLE IF NOT EXISTS cityos.jsonld_contexts (
    id          text PRIMARY KEY,          -- local id (urn:ngsi-ld:... or a random token)
    url         text NOT NULL UNIQUE,      -- the URL it is known by
    kind        text NOT NULL,             -- Hosted | Cached | ImplicitlyCreated
    tenant      text,                      -- NGSILD-Tenant that added a Hosted one; else NULL
    body        jsonb NOT NULL,            -- the JSON-LD document: {"@context": ...}
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used   timestamptz,
    uses        bigint NOT NULL DEFAULT 0
);

-- The transactional outbox: one row per entity change, written in the same transaction as the data.
CREATE TABLE IF NOT EXISTS cityos.outbox (
    seq          bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,            -- uuid4, unique by construction (not indexed)
    tenant       text NOT NULL,
    entity_id    text NOT NULL,
    event_type   text NOT NULL,
    payload      json NOT NULL,            -- the CloudEvents envelope, published byte for byte
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON cityos.outbox (seq) WHERE published_at IS NULL;
