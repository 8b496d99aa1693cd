-- Attribute values of one tenant (issue #12; appended to tenant.sql by db.tenant_ddl, so
-- {schema} is the tenant's generated schema name). One row per number or string a q term can
-- reach in an entity's attribute (cityos.q_values, migration 0014), kept by statement-level
-- triggers on {schema}.entities in the same statement as every entity write. The q compiler
-- (store/postgres/query_values.py) turns order comparisons on numbers and equalities on strings
-- into EXISTS probes of this table, which the planner can start from (a range or value through
-- attr_values_num / attr_values_txt_id) or check entity by entity (attr_values_probe), with
-- statistics on the values instead of a fixed guess for a jsonpath.
DO $$
BEGIN
    IF to_regclass('{schema}.attr_values') IS NULL THEN
        CREATE TABLE {schema}.attr_values (
            entity_id text NOT NULL,              -- no FK: the triggers keep it consistent
            etype     text COLLATE "C",           -- the entity's type if it has only one
            attr      text COLLATE "C" NOT NULL,  -- expanded attribute IRI
            num       numeric,                    -- a number the attribute's q terms reach, or
            txt       text COLLATE "C"            -- a string (at most 512 bytes)
        );
        -- An existing tenant: its entities' values, once.
        INSERT INTO {schema}.attr_values (entity_id, etype, attr, num, txt)
        SELECT e.id, CASE WHEN cardinality(e.types) = 1 THEN e.types[1] END, v.attr, v.num, v.txt
        FROM {schema}.entities e CROSS JOIN LATERAL cityos.q_values(e.attrs) AS v;
    END IF;
    -- attr and txt are only compared for equality or order with literals: bytewise ("C")
    -- comparisons instead of the locale's make each btree insert and probe several times
    -- cheaper (IRIs share a long prefix). entity_id keeps the default collation: it is
    -- joined and merged with entities.id.
    IF (SELECT collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
        WHERE a.attrelid = '{schema}.attr_values'::regclass AND a.attname = 'attr') <> 'C' THEN
        DROP STATISTICS IF EXISTS {schema}.attr_values_attr_txt;
        ALTER TABLE {schema}.attr_values ALTER COLUMN attr TYPE text COLLATE "C",
                                        ALTER COLUMN txt TYPE text COLLATE "C";
    END IF;
    -- etype: the entity's type when it has exactly one (NULL with several). A page of one
    -- type (store/postgres/query.py, _type_page) probes the values of that type only: its
    -- range and value lists are a fifth as long with five types, and a value's entities of
    -- one type come in id order (no sort before merging with the walk of the type).
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = '{schema}.attr_values'::regclass
                   AND attname = 'etype' AND NOT attisdropped) THEN
        ALTER TABLE {schema}.attr_values ADD COLUMN etype text COLLATE "C";
        UPDATE {schema}.attr_values v SET etype = e.types[1]
        FROM {schema}.entities e WHERE e.id = v.entity_id AND cardinality(e.types) = 1;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS attr_values_num ON {schema}.attr_values (attr, num) INCLUDE (entity_id)
    WHERE num IS NOT NULL;
-- entity_id a key column: the entities with one value come in id order (a merge with a walk of
-- one type in id order, or with another value's entities, no sort).
DROP INDEX IF EXISTS {schema}.attr_values_txt;
CREATE INDEX IF NOT EXISTS attr_values_txt_id ON {schema}.attr_values (attr, txt, entity_id)
    WHERE txt IS NOT NULL;
-- The same per type (etype): what a page of one type probes.
CREATE INDEX IF NOT EXISTS attr_values_type_num ON {schema}.attr_values (attr, etype, num)
    INCLUDE (entity_id) WHERE num IS NOT NULL AND etype IS NOT NULL;
CREATE INDEX IF NOT EXISTS attr_values_type_txt
    ON {schema}.attr_values (attr, etype, txt, entity_id) WHERE txt IS NOT NULL AND etype IS NOT NULL;
-- A string value mostly implies its attribute: without these statistics the planner multiplies
-- the two selectivities and underestimates an equality by the number of attributes.
CREATE STATISTICS IF NOT EXISTS {schema}.attr_values_attr_txt (mcv, dependencies)
    ON attr, txt FROM {schema}.attr_values;
-- The probe of one entity's attribute: index-only for both kinds of term, with or without etype.
DROP INDEX IF EXISTS {schema}.attr_values_entity;
DROP INDEX IF EXISTS {schema}.attr_values_probe;
CREATE INDEX IF NOT EXISTS attr_values_probe_typed ON {schema}.attr_values (entity_id, attr)
    INCLUDE (etype, num, txt);

CREATE OR REPLACE FUNCTION {schema}.attr_values_added() RETURNS trigger
    -- no JIT: transition tables are estimated at 1,000 rows and the joins and set-returning
    -- functions inside at billions, which made JIT compile each statement for seconds
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    INSERT INTO {schema}.attr_values (entity_id, etype, attr, num, txt)
    SELECT n.id, CASE WHEN cardinality(n.types) = 1 THEN n.types[1] END, v.attr, v.num, v.txt
    FROM added n CROSS JOIN LATERAL cityos.q_values(n.attrs) v;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER entities_values_added AFTER INSERT ON {schema}.entities
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.attr_values_added();

-- An update re-derives only the attributes whose instances changed (a partial update: one);
-- a change of types rewrites etype on the entity's other rows.
CREATE OR REPLACE FUNCTION {schema}.attr_values_changed() RETURNS trigger
    -- no JIT: transition tables are estimated at 1,000 rows and the joins and set-returning
    -- functions inside at billions, which made JIT compile each statement for seconds
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    IF EXISTS (SELECT FROM old_rows o JOIN new_rows n ON n.id = o.id
               WHERE o.types IS DISTINCT FROM n.types) THEN
        UPDATE {schema}.attr_values v
        SET etype = CASE WHEN cardinality(n.types) = 1 THEN n.types[1] END
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE v.entity_id = o.id AND o.types IS DISTINCT FROM n.types;
    END IF;
    DELETE FROM {schema}.attr_values v USING old_rows o JOIN new_rows n ON n.id = o.id
    WHERE v.entity_id = o.id AND o.attrs IS DISTINCT FROM n.attrs
      AND (o.attrs -> v.attr) IS DISTINCT FROM (n.attrs -> v.attr);
    INSERT INTO {schema}.attr_values (entity_id, etype, attr, num, txt)
    SELECT n.id, CASE WHEN cardinality(n.types) = 1 THEN n.types[1] END, v.attr, v.num, v.txt
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    CROSS JOIN LATERAL (
        SELECT jsonb_object_agg(a.key, a.value) AS attrs FROM jsonb_each(n.attrs) a
        WHERE (o.attrs -> a.key) IS DISTINCT FROM a.value
    ) c
    CROSS JOIN LATERAL cityos.q_values(c.attrs) v
    WHERE o.attrs IS DISTINCT FROM n.attrs;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER entities_values_changed AFTER UPDATE ON {schema}.entities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.attr_values_changed();

CREATE OR REPLACE FUNCTION {schema}.attr_values_gone() RETURNS trigger
    -- no JIT: transition tables are estimated at 1,000 rows and the joins and set-returning
    -- functions inside at billions, which made JIT compile each statement for seconds
    LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    DELETE FROM {schema}.attr_values v USING gone g WHERE v.entity_id = g.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER entities_values_gone AFTER DELETE ON {schema}.entities
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION {schema}.attr_values_gone();
