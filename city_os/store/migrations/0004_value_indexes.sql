-- Value indexes (/cityos/v1/indexes): a data steward opts an attribute of a tenant into btree
-- indexes on its numeric values, so that q range terms (> >= < <= and ranges) and their counts
-- are answered from an index instead of evaluating a jsonpath on every entity of a type.
--
-- q_number_max / q_number_min: the largest / smallest number a q comparison term can compare
-- with, over all instances (datasetIds) of an attribute (``attrs -> IRI``). They read the same
-- members as the q jsonpath of an order comparison (value, json, valueList, languageMap.*) with
-- the same lax array unwrapping (the member, its array elements, and one level below: what
-- ``@ > n`` reaches), so ``q_number_max(a) > n`` matches exactly the entities the jsonpath
-- ``a > n`` matches (a property test checks this against PostgreSQL's jsonpath). NULL: no number.
-- Indexes are built on these functions: changing their body takes a new migration that also
-- re-creates every value index (REINDEX), or the indexes would disagree with the queries.
-- Silent jsonpath: stored data of any shape gives a value, never an error, so an index on these
-- functions can never make a write fail.
CREATE OR REPLACE FUNCTION cityos.q_numbers(instances jsonb) RETURNS SETOF jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    BEGIN ATOMIC
        SELECT jsonb_path_query(instances,
            'lax $[*].keyvalue() ? (@.key == "value" || @.key == "json" || @.key == "valueList")'
            '.value[*] ? (@.type() == "number")', '{}', true)
        UNION ALL
        SELECT jsonb_path_query(instances,
            'lax $[*]."languageMap".*[*] ? (@.type() == "number")', '{}', true);
    END;

CREATE OR REPLACE FUNCTION cityos.q_number_max(instances jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (SELECT max(n::numeric) FROM cityos.q_numbers(instances) AS n);

CREATE OR REPLACE FUNCTION cityos.q_number_min(instances jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (SELECT min(n::numeric) FROM cityos.q_numbers(instances) AS n);

-- One row per indexed attribute of a tenant; the indexes themselves live in the tenant's schema
-- (``vi_max_<hash>``, ``vi_min_<hash>`` on (types, q_number_max/min(attrs -> IRI))).
CREATE TABLE IF NOT EXISTS cityos.value_indexes (
    tenant      text NOT NULL,             -- NGSILD-Tenant value ('' = default tenant)
    schema_name text NOT NULL,             -- the tenant's schema
    attr        text NOT NULL,             -- expanded attribute IRI
    term        text NOT NULL,             -- the attribute name as registered
    kind        text NOT NULL CHECK (kind IN ('number')),
    status      text NOT NULL CHECK (status IN ('building', 'ready')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, attr)
);
CREATE INDEX IF NOT EXISTS value_indexes_schema ON cityos.value_indexes (schema_name);
