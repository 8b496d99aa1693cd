-- Temporal history of one tenant (issue #11); appended to tenant.sql by db.tenant_ddl, so
-- {schema} is the tenant's generated schema name. Every attribute instance change is captured
-- by statement-level triggers on {schema}.entities, in the same transaction as the write.

-- Entities that have a temporal evolution (captured or provisioned through /temporal).
CREATE TABLE IF NOT EXISTS {schema}.temporal_entities (
    id          text PRIMARY KEY,
    types       text[] NOT NULL,
    scopes      text[],
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    deleted_at  timestamptz                -- set when the entity was deleted (entity API)
);
CREATE INDEX IF NOT EXISTS temporal_entities_types ON {schema}.temporal_entities USING gin (types);

-- Attribute instances, partitioned by the month they were recorded in (retention drops whole
-- partitions). inst is the instance in stored form without createdAt/modifiedAt/observedAt,
-- which are columns; num repeats a numeric value for aggregation without jsonb casts.
CREATE TABLE IF NOT EXISTS {schema}.attr_instances (
    entity_id   text NOT NULL,
    attr        text NOT NULL,               -- expanded IRI
    dataset_id  text NOT NULL DEFAULT '',    -- '' = default instance
    instance_id uuid NOT NULL DEFAULT gen_random_uuid(),
    observed_at timestamptz,
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    deleted_at  timestamptz,                 -- a deletion of the attribute (instance)
    num         double precision,
    inst        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (recorded_at);
CREATE TABLE IF NOT EXISTS {schema}.attr_instances_default
    PARTITION OF {schema}.attr_instances DEFAULT;
-- Who made the change (issue #10, audit): the cityosactor / cityosclient of the request, set by
-- the write statement itself with set_config(..., is_local => true) (store/postgres/entity_sql.py
-- _actor_gate) and read here when the capture triggers insert; NULL = the broker itself
-- (expiry, retention) or authentication off. The provision path writes them explicitly.
ALTER TABLE {schema}.attr_instances
    ADD COLUMN IF NOT EXISTS actor text DEFAULT nullif(current_setting('cityos.actor', true), ''),
    ADD COLUMN IF NOT EXISTS client text DEFAULT nullif(current_setting('cityos.client', true), '');
-- A copy of inst when its JSON text is at most 200 bytes (sensor readings, most instances),
-- NULL when larger: the read index below holds it, so reading one entity's instances takes
-- the index alone instead of one heap page per instance (history arrives interleaved across
-- entities); larger instances are read from the heap. An index entry must stay under
-- PostgreSQL's 2,704 bytes and jsonb can take 6 times the bytes of its text (an array of
-- digits: 343 bytes of text, 2,060 of jsonb), so 200 bytes of text stay under 1,300.
-- TemporalRepository.instances reads coalesce(inst_small, the heap's inst).
ALTER TABLE {schema}.attr_instances ADD COLUMN IF NOT EXISTS inst_small jsonb
    GENERATED ALWAYS AS (CASE WHEN octet_length(inst::text) <= 200 THEN inst END) STORED;

-- One entity's attribute over a time range (retrieve, lastN, per-entity buckets); a type's
-- buckets go through temporal_entities_types and this index with entity_id = ANY(...).
-- INCLUDE: every column an instance read without sysAttrs needs (actor and client are read
-- from the heap with sysAttrs only), so such reads and the aggregations over observedAt are
-- index-only scans (the partitions are vacuumed every 20,000 inserts so that their pages are
-- all-visible: temporal_ensure_partitions). Other timeproperties use the (entity_id, attr)
-- prefix and filter.
CREATE INDEX IF NOT EXISTS attr_instances_read ON {schema}.attr_instances
    (entity_id, attr, observed_at)
    INCLUDE (num, dataset_id, deleted_at, instance_id, created_at, modified_at, inst_small);
DROP INDEX IF EXISTS {schema}.attr_instances_observed_live;
DROP INDEX IF EXISTS {schema}.attr_instances_observed;

-- Monthly partitions from the current month to ``ahead`` months later (idempotent).
CREATE OR REPLACE FUNCTION {schema}.temporal_ensure_partitions(ahead int) RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    made int := 0;
    part text;
BEGIN
    FOR i IN 0..ahead LOOP
        part := 'attr_instances_' || to_char(m, 'YYYYMM');
        IF to_regclass('{schema}.' || part) IS NULL THEN
            EXECUTE format('CREATE TABLE {schema}.%I PARTITION OF {schema}.attr_instances'
                           ' FOR VALUES FROM (%L) TO (%L)', part,
                           m::timestamp AT TIME ZONE 'UTC',
                           (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
        -- insert-driven autovacuum every 20,000 instances (not 20 % of a month's partition),
        -- which keeps the pages all-visible for the index-only reads
        IF NOT coalesce((SELECT reloptions FROM pg_class
                         WHERE oid = ('{schema}.' || part)::regclass), '{}')
               @> ARRAY['autovacuum_vacuum_insert_threshold=20000'] THEN
            EXECUTE format('ALTER TABLE {schema}.%I SET (autovacuum_vacuum_insert_threshold'
                           ' = 20000, autovacuum_vacuum_insert_scale_factor = 0)', part);
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN made;
END $$;
SELECT {schema}.temporal_ensure_partitions(2);

-- Drop the monthly partitions whose whole range lies before ``horizon`` (retention).
CREATE OR REPLACE FUNCTION {schema}.temporal_drop_partitions(horizon timestamptz) RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    r record;
    dropped int := 0;
BEGIN
    FOR r IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '{schema}.attr_instances'::regclass
          AND c.relname ~ '^attr_instances_[0-9]{6}$'
    LOOP
        IF (to_date(right(r.relname, 6), 'YYYYMM') + interval '1 month')::timestamp
               AT TIME ZONE 'UTC' <= horizon THEN
            EXECUTE format('DROP TABLE {schema}.%I', r.relname);
            -- the hourly rollups of that partition's instances (tenant_temporal_rollups.sql)
            DELETE FROM {schema}.attr_rollups WHERE month = to_date(right(r.relname, 6), 'YYYYMM');
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;

-- The rows of the instances of ``attrs`` (one entity), as attr_instances wants them.
CREATE OR REPLACE FUNCTION {schema}.temporal_rows(eid text, attrs jsonb, deleted timestamptz)
    RETURNS TABLE (entity_id text, attr text, dataset_id text, observed_at timestamptz,
                   created_at timestamptz, modified_at timestamptz, deleted_at timestamptz,
                   num double precision, inst jsonb)
    LANGUAGE sql STABLE AS $$
    SELECT eid, a.key, coalesce(i.value->>'datasetId', ''),
           (i.value->>'observedAt')::timestamptz,
           -- an instance without system members (written by SQL, or by an older version):
           -- recorded now
           coalesce((i.value->>'createdAt')::timestamptz, deleted, now()),
           coalesce(deleted, (i.value->>'modifiedAt')::timestamptz, now()),
           deleted,
           CASE WHEN jsonb_typeof(i.value->'value') = 'number'
                THEN (i.value->>'value')::double precision END,
           i.value - 'createdAt' - 'modifiedAt' - 'observedAt'
    FROM jsonb_each(attrs) a, jsonb_array_elements(a.value) i
$$;

-- The start of the aggregation period holding ``t`` for a period with months or years
-- (calendar arithmetic in UTC; date_bin takes fixed lengths only): origin + k·p, the largest
-- such instant not after t.
CREATE OR REPLACE FUNCTION {schema}.temporal_bin(p interval, t timestamptz, origin timestamptz)
    RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    o timestamp := origin AT TIME ZONE 'UTC';
    u timestamp := t AT TIME ZONE 'UTC';
    k bigint := floor(extract(epoch FROM u - o) / extract(epoch FROM p));
BEGIN
    WHILE o + k * p > u LOOP
        k := k - 1;
    END LOOP;
    WHILE o + (k + 1) * p <= u LOOP
        k := k + 1;
    END LOOP;
    RETURN (o + k * p) AT TIME ZONE 'UTC';
END $$;

-- The end of that period: its start plus p, in UTC.
CREATE OR REPLACE FUNCTION {schema}.temporal_bin_end(p interval, start timestamptz)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT ((start AT TIME ZONE 'UTC') + p) AT TIME ZONE 'UTC' $$;

-- The Scope as a temporal Property (§4.5.6, §4.18): one instance per change of an entity's
-- scopes through the Core API, observedAt a copy of modifiedAt; a removal is a deletion record
-- (its value the scopes it ends).
CREATE OR REPLACE FUNCTION {schema}.temporal_scope_row(eid text, scopes text[], at timestamptz,
                                                     created timestamptz, removed boolean)
    RETURNS TABLE (entity_id text, attr text, dataset_id text, observed_at timestamptz,
                   created_at timestamptz, modified_at timestamptz, deleted_at timestamptz,
                   num double precision, inst jsonb)
    LANGUAGE sql IMMUTABLE AS $$
    SELECT eid, 'https://uri.etsi.org/ngsi-ld/scope', '',
           CASE WHEN removed THEN NULL ELSE at END, coalesce(created, at), at,
           CASE WHEN removed THEN at END, NULL::double precision,
           jsonb_build_object('type', 'Property', 'value', to_jsonb(scopes))
$$;

-- Each capture function is one statement: the temporal entity, the instances, and the hourly
-- rollups of those instances (temporal_rollup_merge, tenant_temporal_rollups.sql, fed with the
-- rows just inserted; the rollup trigger on attr_instances skips inserts made by triggers).
-- No JIT: transition tables are estimated at 1,000 rows and the joins and set-returning
-- functions inside at billions, which made JIT compile each statement for seconds.
CREATE OR REPLACE FUNCTION {schema}.temporal_capture_insert() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    merged int;
BEGIN
    WITH te AS (
        INSERT INTO {schema}.temporal_entities AS t (id, types, scopes, created_at, modified_at)
        SELECT n.id, n.types, n.scopes, n.created_at, n.modified_at FROM fresh n
        ON CONFLICT (id) DO UPDATE SET types = EXCLUDED.types, scopes = EXCLUDED.scopes,
            modified_at = EXCLUDED.modified_at, deleted_at = NULL
    ), ins AS (
        INSERT INTO {schema}.attr_instances AS a (entity_id, attr, dataset_id, observed_at,
                                                  created_at, modified_at, deleted_at, num, inst)
        SELECT r.* FROM fresh n, {schema}.temporal_rows(n.id, n.attrs, NULL) r
        UNION ALL
        SELECT r.* FROM fresh n,
            {schema}.temporal_scope_row(n.id, n.scopes, n.modified_at, n.created_at, false) r
        WHERE n.scopes IS NOT NULL
        RETURNING a AS row
    )
    SELECT {schema}.temporal_rollup_merge(array_agg(row) FILTER (WHERE (row).observed_at
                                                                  IS NOT NULL))
    INTO merged FROM ins;
    RETURN NULL;
END $$;

-- Instances that are new or changed (any member, modifiedAt included) are recorded; those
-- that disappeared are recorded as deleted (deletedAt = the entity's modifiedAt). Only the
-- attributes whose instance arrays differ are expanded (a partial update touches one).
CREATE OR REPLACE FUNCTION {schema}.temporal_capture_update() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    merged int;
BEGIN
    WITH te AS (
        UPDATE {schema}.temporal_entities t
        SET types = n.types, scopes = n.scopes, modified_at = n.modified_at, deleted_at = NULL
        FROM fresh n WHERE t.id = n.id
          AND (t.types, t.scopes, t.modified_at) IS DISTINCT FROM (n.types, n.scopes,
                                                                   n.modified_at)
    ), changed AS (
        SELECT n.id, n.modified_at,
               (SELECT jsonb_object_agg(k.key, k.value) FROM jsonb_each(n.attrs) k
                WHERE k.value IS DISTINCT FROM o.attrs->k.key) AS now_attrs,
               (SELECT jsonb_object_agg(k.key, k.value) FROM jsonb_each(o.attrs) k
                WHERE k.value IS DISTINCT FROM n.attrs->k.key) AS was_attrs
        FROM fresh n JOIN stale o ON o.id = n.id
        WHERE n.attrs IS DISTINCT FROM o.attrs
    ), ins AS (
        INSERT INTO {schema}.attr_instances AS a (entity_id, attr, dataset_id, observed_at,
                                                  created_at, modified_at, deleted_at, num, inst)
        SELECT r.* FROM changed c,
            LATERAL {schema}.temporal_rows(c.id, c.now_attrs, NULL) r
        WHERE NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(c.was_attrs->r.attr) x
            WHERE coalesce(x->>'datasetId', '') = r.dataset_id
              AND x - 'createdAt' - 'modifiedAt' - 'observedAt' = r.inst
              AND (x->>'modifiedAt')::timestamptz IS NOT DISTINCT FROM r.modified_at
              AND (x->>'observedAt')::timestamptz IS NOT DISTINCT FROM r.observed_at)
        UNION ALL
        SELECT r.* FROM changed c,
            LATERAL {schema}.temporal_rows(c.id, c.was_attrs, c.modified_at) r
        WHERE NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements(c.now_attrs->r.attr) x
            WHERE coalesce(x->>'datasetId', '') = r.dataset_id)
        UNION ALL
        SELECT r.* FROM fresh n JOIN stale o ON o.id = n.id,
            LATERAL {schema}.temporal_scope_row(n.id, coalesce(n.scopes, o.scopes),
                                                n.modified_at, NULL, n.scopes IS NULL) r
        WHERE n.scopes IS DISTINCT FROM o.scopes
        RETURNING a AS row
    )
    SELECT {schema}.temporal_rollup_merge(array_agg(row) FILTER (WHERE (row).observed_at
                                                                  IS NOT NULL))
    INTO merged FROM ins;
    RETURN NULL;
END $$;

-- A deleted entity (delete, purge, expiry): its live instances are recorded as deleted
-- (deletion records, which the rollups leave out).
CREATE OR REPLACE FUNCTION {schema}.temporal_capture_delete() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    WITH te AS (
        UPDATE {schema}.temporal_entities t SET deleted_at = now()
        FROM stale o WHERE t.id = o.id
    )
    INSERT INTO {schema}.attr_instances (entity_id, attr, dataset_id, observed_at, created_at,
                                         modified_at, deleted_at, num, inst)
    SELECT r.* FROM stale o, {schema}.temporal_rows(o.id, o.attrs, now()) r
    UNION ALL
    SELECT r.* FROM stale o, {schema}.temporal_scope_row(o.id, o.scopes, now(), NULL, true) r
    WHERE o.scopes IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER entities_temporal_insert AFTER INSERT ON {schema}.entities
    REFERENCING NEW TABLE AS fresh FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.temporal_capture_insert();
CREATE OR REPLACE TRIGGER entities_temporal_update AFTER UPDATE ON {schema}.entities
    REFERENCING OLD TABLE AS stale NEW TABLE AS fresh FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.temporal_capture_update();
CREATE OR REPLACE TRIGGER entities_temporal_delete AFTER DELETE ON {schema}.entities
    REFERENCING OLD TABLE AS stale FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.temporal_capture_delete();
