-- Objects of one tenant; {schema} is replaced by the tenant's generated schema name (an identifier
-- made by city-os, never request text).
CREATE SCHEMA IF NOT EXISTS {schema};

-- Current state of each entity. attrs maps an attribute's expanded IRI to the list of its instances
-- (one per datasetId; the default instance has no datasetId), each in normalized NGSI-LD form with
-- sub-attribute names expanded. Values inside 'value' are stored as given.
CREATE TABLE IF NOT EXISTS {schema}.entities (
    id          text PRIMARY KEY,
    types       text[] NOT NULL,           -- expanded type IRIs
    scopes      text[],
    attrs       jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    expires_at  timestamptz,               -- transient entities (§4.21)
    version     bigint NOT NULL DEFAULT 1  -- optimistic concurrency: bumped on every write
);
-- attrs of a typical entity (~1.8 KB of jsonb) cross the TOAST threshold, so every insert and
-- update compresses it and every read and trigger decompresses it: lz4 does both several times
-- faster than the default pglz (as for the outbox, 0003). New values only: no rewrite; altered
-- once (the lock of ALTER TABLE is not taken again by later migrations of the tenant).
DO $$
BEGIN
    IF (SELECT attcompression FROM pg_attribute
        WHERE attrelid = '{schema}.entities'::regclass AND attname = 'attrs') <> 'l' THEN
        ALTER TABLE {schema}.entities ALTER COLUMN attrs SET COMPRESSION lz4;
    END IF;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; entity attributes keep the default compression';
END
$$;
CREATE INDEX IF NOT EXISTS entities_types ON {schema}.entities USING gin (types);
-- Pages of one type in id order (query engine: see QueryRepository._type_page); expires_at
-- included so that the page's ids come from an index-only scan.
DROP INDEX IF EXISTS {schema}.entities_type_id;
CREATE INDEX IF NOT EXISTS entities_type_live ON {schema}.entities (types, id) INCLUDE (expires_at);
CREATE INDEX IF NOT EXISTS entities_multitype ON {schema}.entities USING gin (types)
    WHERE cardinality(types) > 1;
-- Default jsonb_ops (keys and values), not jsonb_path_ops: it also serves q paths with wildcards
-- (languageMap.*, the alternative value members of one equality term) and key existence (?, ?|).
DROP INDEX IF EXISTS {schema}.entities_attrs;
CREATE INDEX IF NOT EXISTS entities_attrs_gin ON {schema}.entities USING gin (attrs);
CREATE INDEX IF NOT EXISTS entities_expires ON {schema}.entities (expires_at) WHERE expires_at IS NOT NULL;

-- Geometry of every GeoProperty instance, for PostGIS queries.
CREATE TABLE IF NOT EXISTS {schema}.geo (
    entity_id   text NOT NULL,             -- no FK: the entity statements keep it consistent
    attr        text NOT NULL,             -- expanded IRI of the GeoProperty
    dataset_id  text NOT NULL DEFAULT '',  -- '' = default instance
    geom        geometry NOT NULL,         -- SRID 4326
    PRIMARY KEY (entity_id, attr, dataset_id)
);
-- Points again as a plain point (lon, lat), for `near` on points: the GiST index holds everything
-- such a query reads (index-only scans); see query_sql.geo_conditions.
ALTER TABLE {schema}.geo ADD COLUMN IF NOT EXISTS pt point
    GENERATED ALWAYS AS (CASE WHEN GeometryType(geom) = 'POINT' THEN point(ST_X(geom), ST_Y(geom)) END)
    STORED;
CREATE INDEX IF NOT EXISTS geo_points ON {schema}.geo USING gist (pt) INCLUDE (attr, entity_id)
    WHERE pt IS NOT NULL;
-- ... and the other shapes apart, so that `near` on them does not wade through the points.
CREATE INDEX IF NOT EXISTS geo_shapes ON {schema}.geo USING gist (geom) WHERE pt IS NULL;
CREATE INDEX IF NOT EXISTS geo_geom ON {schema}.geo USING gist (geom);
-- No geography index: near with maxDistance is served by geo_points/geo_shapes and a lon/lat box
-- (query_sql.near_box); only a box-less near (poles, the antimeridian, thousands of km) scans.
DROP INDEX IF EXISTS {schema}.geo_geog;

-- Access control (docs/access-control.md). Permissions of the tenant: a target (one entity, or
-- types and/or scopes), an assignee key (public, authenticated, subject:<iss>#<sub>, group:<v>,
-- client:<azp>, apikey:<id>) and an action (1 read, 2 write, 3 admin, 4 own).
CREATE TABLE IF NOT EXISTS {schema}.permissions (
    id          text PRIMARY KEY,
    assignee    text NOT NULL,
    action      smallint NOT NULL CHECK (action BETWEEN 1 AND 4),
    entity_id   text,                      -- target: this entity, or else ...
    types       text[],                    -- ... entities of these types (NULL = any)
    scopes      text[],                    -- ... with one of these scopes (NULL = any)
    personal    boolean NOT NULL DEFAULT false, -- types/scopes also cover personal entities
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (entity_id IS NULL OR (types IS NULL AND scopes IS NULL AND NOT personal))
);
CREATE INDEX IF NOT EXISTS permissions_entity ON {schema}.permissions (entity_id, assignee)
    WHERE entity_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS permissions_assignee ON {schema}.permissions (assignee);

-- The data subject of a personal entity: the citizen (iss, sub at the citizens' IdP).
CREATE TABLE IF NOT EXISTS {schema}.data_subjects (
    entity_id   text PRIMARY KEY,
    issuer      text NOT NULL,
    subject     text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS data_subjects_subject ON {schema}.data_subjects (issuer, subject);

-- A deleted entity (delete, purge, expiry, any path) takes its permissions and data subject
-- with it: a new entity with the same id must not inherit them.
CREATE OR REPLACE FUNCTION {schema}.forget_entity_access() RETURNS trigger
    -- no JIT: transition tables are estimated at 1,000 rows and the joins and set-returning
    -- functions inside at billions, which made JIT compile each statement for seconds
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    DELETE FROM {schema}.permissions p USING gone WHERE p.entity_id = gone.id;
    DELETE FROM {schema}.data_subjects d USING gone WHERE d.entity_id = gone.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER entities_forget_access AFTER DELETE ON {schema}.entities
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION {schema}.forget_entity_access();

-- Subscriptions (§5.8): the document as parsed by ngsild/subscription.py (names expanded), the
-- @context it was created with (its q/pick/omit terms and notifications use it) and the URL
-- notifications carry as their @context. expires_at/is_active repeat members of doc for SQL.
CREATE TABLE IF NOT EXISTS {schema}.subscriptions (
    id             text PRIMARY KEY,
    doc            jsonb NOT NULL,
    context        jsonb,                -- NULL: the core context only
    notify_context text NOT NULL,        -- jsonldContext
    created_at     timestamptz NOT NULL,
    modified_at    timestamptz NOT NULL,
    expires_at     timestamptz,
    is_active      boolean NOT NULL DEFAULT true,
    version        bigint NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS subscriptions_created ON {schema}.subscriptions (created_at, id);
-- Who created it (access control): its principal's snapshot, {"key": assignee key, …}; NULL when
-- created with authentication off. Notifications carry only what the owner may read.
ALTER TABLE {schema}.subscriptions ADD COLUMN IF NOT EXISTS owner jsonb;
CREATE INDEX IF NOT EXISTS subscriptions_owner ON {schema}.subscriptions ((owner->>'key'))
    WHERE owner IS NOT NULL;
-- What the notifier recorded about each subscription's notifications (written in batches).
CREATE TABLE IF NOT EXISTS {schema}.subscription_status (
    id                  text PRIMARY KEY,
    times_sent          bigint NOT NULL DEFAULT 0,
    times_failed        bigint NOT NULL DEFAULT 0,
    last_notification   timestamptz,
    last_success        timestamptz,
    last_failure        timestamptz,
    last_failure_reason text,
    failing             boolean NOT NULL DEFAULT false
);
