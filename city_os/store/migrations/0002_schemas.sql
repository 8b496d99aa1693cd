-- Schema registry (/cityos/v1/schemas): JSON Schemas of the key-values form of an entity type, per
-- tenant, in immutable numbered versions of which at most one is active. Changes are announced on
-- the channel cityos_schemas so every broker process refreshes its in-memory active schemas.
CREATE TABLE IF NOT EXISTS cityos.schema_types (
    tenant       text NOT NULL,            -- NGSILD-Tenant value ('' = default tenant)
    type_iri     text NOT NULL,            -- expanded entity type
    last_version integer NOT NULL DEFAULT 0, -- numbers are never reused, even after a delete
    PRIMARY KEY (tenant, type_iri)
);

CREATE TABLE IF NOT EXISTS cityos.schema_versions (
    tenant      text NOT NULL,
    type_iri    text NOT NULL,
    version     integer NOT NULL,
    term        text NOT NULL,             -- the type name as registered (a term or the IRI)
    schema      json NOT NULL,             -- json, not jsonb: kept exactly as the steward wrote it
    context     json,                      -- @context registered with it; NULL = core context only
    digest      text NOT NULL,             -- sha256 of (schema, context): same content, same version
    active      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, type_iri, version),
    FOREIGN KEY (tenant, type_iri) REFERENCES cityos.schema_types ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS schema_versions_one_active
    ON cityos.schema_versions (tenant, type_iri) WHERE active;
CREATE INDEX IF NOT EXISTS schema_versions_active ON cityos.schema_versions (active) WHERE active;
