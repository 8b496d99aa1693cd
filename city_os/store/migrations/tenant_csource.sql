-- Context source registrations of one tenant (§5.9; federation/model.py). doc is the stored
-- document of Registration.to_doc (names expanded); context the @context it was written with
-- (sent with forwarded requests); expires_at repeats doc's expiresAt for SQL. {schema} is the
-- tenant's generated schema name.
CREATE TABLE IF NOT EXISTS {schema}.csource_registrations (
    id          text PRIMARY KEY,
    doc         jsonb NOT NULL,
    context     jsonb,                     -- NULL: the core context only
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    expires_at  timestamptz,
    version     bigint NOT NULL DEFAULT 1  -- optimistic concurrency: bumped on every write
);
CREATE INDEX IF NOT EXISTS csource_registrations_created
    ON {schema}.csource_registrations (created_at, id);
CREATE INDEX IF NOT EXISTS csource_registrations_expires
    ON {schema}.csource_registrations (expires_at) WHERE expires_at IS NOT NULL;
