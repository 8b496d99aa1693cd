-- Hourly rollups of the attribute history of one tenant (issue #11); appended to tenant.sql by
-- db.tenant_ddl after tenant_temporal.sql, so {schema} is the tenant's schema name.
--
-- One row per entity, attribute, dataset, UTC hour of observedAt and month the instances were
-- recorded in (the partition of attr_instances they live in, so that dropping a partition for
-- retention drops its rollups too): partial aggregates from which every aggregation method but
-- distinctCount is answered for periods of whole hours aligned on an hour (temporal_rollups.py).
-- Maintained in the transaction of the write: inserted instances are merged in (Chan et al.'s
-- pairwise combination for m2) by temporal_rollup_merge, which the capture functions call in
-- their own statement and a statement-level trigger calls for any other insert; updates and
-- deletes recompute the buckets they touched from the instances themselves.
-- Instances counted: observedAt set, not a deletion record (as the exact aggregation).
-- Numbers are taken when 0 or 1e-100 <= |x| <= 1e100: PostgreSQL raises an error when a
-- float8 product overflows or underflows, and a rollup must never fail a write.

-- x² without an underflow error (PostgreSQL raises one when a product rounds to 0).
CREATE OR REPLACE FUNCTION {schema}.temporal_sq(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN abs(x) < 1e-150 THEN 0 ELSE x * x END $$;

-- The number of an instance as the partials take it (NULL: not a number, or out of range).
CREATE OR REPLACE FUNCTION {schema}.temporal_tame(x double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN x = 0 OR abs(x) BETWEEN 1e-100 AND 1e100 THEN x END $$;

-- The rollups as they should be, from the instances (the backfill; the property test).
CREATE OR REPLACE VIEW {schema}.attr_rollup_source AS
SELECT entity_id, attr, dataset_id, hour, month,
       count(*) AS cnt, count(v) AS n, sum(v) AS total, sum({schema}.temporal_sq(v)) AS sumsq,
       min(v) AS lo, max(v) AS hi, coalesce(var_pop(v) * count(v), 0) AS m2,
       min(observed_at) AS first_t, max(observed_at) AS last_t,
       bool_or(num IS NOT NULL AND v IS NULL) AS wild
FROM (SELECT entity_id, attr, dataset_id, observed_at, num, {schema}.temporal_tame(num) AS v,
             date_bin('1 hour', observed_at, timestamptz '2000-01-01 00:00:00+00') AS hour,
             date_trunc('month', recorded_at AT TIME ZONE 'UTC')::date AS month
      FROM {schema}.attr_instances
      WHERE observed_at IS NOT NULL AND deleted_at IS NULL) i
GROUP BY 1, 2, 3, 4, 5;

-- The rollups table, built from the instances when it is new (a tenant whose history
-- predates it); writers wait meanwhile, so no instance is missed before the triggers exist.
DO $$
BEGIN
    IF to_regclass('{schema}.attr_rollups') IS NULL THEN
        LOCK TABLE {schema}.attr_instances IN SHARE ROW EXCLUSIVE MODE;
        CREATE TABLE {schema}.attr_rollups (
            entity_id  text NOT NULL,
            attr       text NOT NULL,
            dataset_id text NOT NULL,
            hour       timestamptz NOT NULL,     -- start of the UTC hour of observedAt
            month      date NOT NULL,            -- UTC month of recorded_at (the partition)
            cnt        bigint NOT NULL,          -- instances (totalCount)
            n          bigint NOT NULL,          -- instances with a numeric value
            total      double precision,         -- sum of the numeric values (NULL when n = 0)
            sumsq      double precision,         -- sum of their squares
            lo         double precision,         -- min
            hi         double precision,         -- max
            m2         double precision,         -- sum of squared deviations from total / n
            first_t    timestamptz NOT NULL,     -- earliest and latest observedAt in the bucket
            last_t     timestamptz NOT NULL,
            wild       boolean NOT NULL,         -- a number outside the range above (left
                                                 -- out of the partials): the exact path
            PRIMARY KEY (entity_id, attr, hour, dataset_id, month)
        );
        INSERT INTO {schema}.attr_rollups SELECT * FROM {schema}.attr_rollup_source;
    END IF;
END $$;

-- Merge the partial aggregates of ``added`` (instance rows) into the rollups: the one statement
-- that writes attr_rollups. The capture functions of tenant_temporal.sql call it with the rows
-- they have just inserted (in the same statement, no second trigger pass); the triggers below
-- with the rows of any other write to attr_instances; the recomputation with a bucket's rows.
-- Returns the number of rows given.
CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_merge(added {schema}.attr_instances[])
    RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    IF added IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO {schema}.attr_rollups AS r
    SELECT entity_id, attr, dataset_id, hour, month,
           count(*), count(v), sum(v), sum({schema}.temporal_sq(v)), min(v), max(v),
           coalesce(var_pop(v) * count(v), 0), min(observed_at), max(observed_at),
           bool_or(num IS NOT NULL AND v IS NULL)
    FROM (SELECT entity_id, attr, dataset_id, observed_at, num,
                 {schema}.temporal_tame(num) AS v,
                 date_bin('1 hour', observed_at, timestamptz '2000-01-01 00:00:00+00') AS hour,
                 date_trunc('month', recorded_at AT TIME ZONE 'UTC')::date AS month
          FROM unnest(added) WHERE observed_at IS NOT NULL AND deleted_at IS NULL) i
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 4, 3, 5
    ON CONFLICT (entity_id, attr, hour, dataset_id, month) DO UPDATE SET
        cnt = r.cnt + EXCLUDED.cnt,
        n = r.n + EXCLUDED.n,
        total = CASE WHEN r.n = 0 THEN EXCLUDED.total WHEN EXCLUDED.n = 0 THEN r.total
                     ELSE r.total + EXCLUDED.total END,
        sumsq = CASE WHEN r.n = 0 THEN EXCLUDED.sumsq WHEN EXCLUDED.n = 0 THEN r.sumsq
                     ELSE r.sumsq + EXCLUDED.sumsq END,
        lo = least(r.lo, EXCLUDED.lo),
        hi = greatest(r.hi, EXCLUDED.hi),
        m2 = CASE WHEN r.n = 0 THEN EXCLUDED.m2 WHEN EXCLUDED.n = 0 THEN r.m2
                  ELSE r.m2 + EXCLUDED.m2 + {schema}.temporal_sq(
                       EXCLUDED.total / EXCLUDED.n - r.total / r.n)
                       * r.n * EXCLUDED.n / (r.n + EXCLUDED.n) END,
        first_t = least(r.first_t, EXCLUDED.first_t),
        last_t = greatest(r.last_t, EXCLUDED.last_t),
        wild = r.wild OR EXCLUDED.wild;
    RETURN cardinality(added);
END $$;

-- In chunks of 10,000 rows: a bulk insert (a load) does not hold an array of all its rows.
CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_insert() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    chunk {schema}.attr_instances[] := '{}';
    one {schema}.attr_instances;
    n int := 0;
BEGIN
    FOR one IN SELECT a.* FROM added a WHERE a.observed_at IS NOT NULL AND a.deleted_at IS NULL
    LOOP
        n := n + 1;
        chunk[n] := one;  -- in place (chunk := chunk || one copies the array)
        IF n = 10000 THEN
            PERFORM {schema}.temporal_rollup_merge(chunk);
            chunk := '{}';
            n := 0;
        END IF;
    END LOOP;
    IF n > 0 THEN
        PERFORM {schema}.temporal_rollup_merge(chunk);
    END IF;
    RETURN NULL;
END $$;

-- Recompute the buckets ``touched`` (entity_id, attr, dataset_id, hour, month) from
-- attr_instances. The DELETE locks the buckets' rows (it waits for a concurrent insert's merge
-- to commit); the merge, a later statement with a later snapshot, sees that insert's instance.
CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_recompute(touched jsonb) RETURNS void
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF touched IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM {schema}.attr_rollups r
    USING jsonb_to_recordset(touched) AS k(entity_id text, attr text, dataset_id text,
                                           hour timestamptz, month date)
    WHERE r.entity_id = k.entity_id AND r.attr = k.attr AND r.dataset_id = k.dataset_id
      AND r.hour = k.hour AND r.month = k.month;
    PERFORM {schema}.temporal_rollup_merge(ARRAY(
        SELECT a
        FROM (SELECT DISTINCT * FROM jsonb_to_recordset(touched)
                  AS x(entity_id text, attr text, dataset_id text, hour timestamptz,
                       month date)) k
        JOIN {schema}.attr_instances a
          ON a.entity_id = k.entity_id AND a.attr = k.attr AND a.dataset_id = k.dataset_id
         AND a.observed_at >= k.hour AND a.observed_at < k.hour + interval '1 hour'
         AND a.recorded_at >= k.month::timestamp AT TIME ZONE 'UTC'
         AND a.recorded_at < (k.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
END $$;

-- The buckets of the instance rows of a transition table, as temporal_rollup_recompute wants.
CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_key(eid text, attr text, ds text,
                                                        observed timestamptz,
                                                        recorded timestamptz) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'entity_id', eid, 'attr', attr, 'dataset_id', ds,
        'hour', date_bin('1 hour', observed, timestamptz '2000-01-01 00:00:00+00'),
        'month', date_trunc('month', recorded AT TIME ZONE 'UTC')::date)
$$;

CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_update() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM {schema}.temporal_rollup_recompute((
        SELECT jsonb_agg(DISTINCT {schema}.temporal_rollup_key(
                   entity_id, attr, dataset_id, observed_at, recorded_at))
        FROM (SELECT entity_id, attr, dataset_id, observed_at, recorded_at FROM gone
              UNION ALL
              SELECT entity_id, attr, dataset_id, observed_at, recorded_at FROM added) x
        WHERE observed_at IS NOT NULL));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {schema}.temporal_rollup_delete() RETURNS trigger
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM {schema}.temporal_rollup_recompute((
        SELECT jsonb_agg(DISTINCT {schema}.temporal_rollup_key(
                   entity_id, attr, dataset_id, observed_at, recorded_at))
        FROM gone WHERE observed_at IS NOT NULL AND deleted_at IS NULL));
    RETURN NULL;
END $$;

-- Inserts by the capture triggers (trigger depth 1) merge their rows themselves.
CREATE OR REPLACE TRIGGER attr_instances_rollup_insert AFTER INSERT ON {schema}.attr_instances
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION {schema}.temporal_rollup_insert();
CREATE OR REPLACE TRIGGER attr_instances_rollup_update AFTER UPDATE ON {schema}.attr_instances
    REFERENCING OLD TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.temporal_rollup_update();
CREATE OR REPLACE TRIGGER attr_instances_rollup_delete AFTER DELETE ON {schema}.attr_instances
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.temporal_rollup_delete();
