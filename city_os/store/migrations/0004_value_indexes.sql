-- Value indexes (/cityos/v1/indexes): a data steward opts an attribute of a tenant into btree
-- indexes on its numeric values, so that q order comparisons (> >= < <=) and their counts are
-- answered from an index instead of evaluating a jsonpath on every entity of a type.
--
-- q_number_bound(instances, largest): the largest (or smallest) number a q comparison term can
-- compare with, over all instances (datasetIds) of an attribute (``attrs -> IRI``). It reads the
-- same members as the q jsonpath of an order comparison (value, json, valueList; languageMap.*
-- too, but the API stores only strings there) with the same lax array unwrapping (the member,
-- its array elements, and one level below: what ``@ > n`` reaches), so
-- ``q_number_bound(a, true) > n`` matches exactly the entities the jsonpath ``a > n`` matches
-- (a property test checks this against PostgreSQL's jsonpath). NULL: no number there.
--
-- The common case, one instance whose value is a number, is read directly (about 1 µs); the
-- jsonpath and aggregate (about 15 µs) only run for the rest. Every operation used is total:
-- stored data of any shape gives a value, never an error, so an index on this function can
-- never make a write fail. Indexes are built on it: changing its body takes a new migration
-- that also re-creates every value index, or the indexes would disagree with the queries.
CREATE OR REPLACE FUNCTION cityos.q_number_bound(instances jsonb, largest boolean)
    RETURNS numeric
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE
        WHEN jsonb_typeof(instances -> 0 -> 'value') = 'number' AND instances -> 1 IS NULL
            AND NOT instances -> 0 ?| ARRAY['json', 'valueList']
        THEN (instances -> 0 -> 'value')::numeric
        ELSE (SELECT CASE WHEN largest THEN max(n::numeric) ELSE min(n::numeric) END
              FROM jsonb_path_query(instances,
                  'lax $[*].keyvalue() ? (@.key == "value" || @.key == "json" || @.key == "valueList")'
                  '.value[*] ? (@.type() == "number")', '{}', true) AS n)
    END;

-- One row per indexed attribute of a tenant; the indexes themselves live in the tenant's schema
-- (``vi_max_<hash>``, ``vi_min_<hash>`` on (types, q_number_bound(attrs -> IRI, true/false))).
CREATE TABLE IF NOT EXISTS cityos.value_indexes (
    tenant      text NOT NULL,             -- NGSILD-Tenant value ('' = default tenant)
    schema_name text NOT NULL,             -- the tenant's schema
    attr        text NOT NULL,             -- expanded attribute IRI
    term        text NOT NULL,             -- the attribute name as registered
    kind        text NOT NULL CHECK (kind IN ('number')),
    status      text NOT NULL CHECK (status IN ('building', 'ready', 'failed')),
    error       text,                      -- why the build failed
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, attr)
);
CREATE INDEX IF NOT EXISTS value_indexes_schema ON cityos.value_indexes (schema_name);
