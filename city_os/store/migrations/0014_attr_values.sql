-- Attribute values for q (issue #12): every number and string a q comparison term can reach in
-- an attribute's instances, as rows (attr, num, txt) that the tenant's attr_values table keeps
-- for each entity (tenant_values.sql), so that q answers ranges and equalities from btree
-- indexes the broker maintains by itself, with statistics the planner can use.
--
-- Reach = what the q jsonpath of ``query_sql`` compares (the lax array unwrapping included: the
-- member, its array elements and their elements): numbers of value, json, valueList and
-- languageMap.* (order comparisons); strings of value, object, objectList, vocab, json,
-- valueList and languageMap.* (equality). A property test checks both against the jsonpath.
-- Strings over 512 bytes are not kept (index rows must fit 2,704 bytes with the id and the
-- attribute): q terms with a longer literal keep the jsonpath. Numbers come from orjson (float
-- or 64-bit integer), so numeric index rows stay small.
--
-- q_values_slow: any instance, by jsonpath (about 15 µs). q_values: a whole attrs object; the
-- common instance (a plain value or object, one number or string) is read directly, the rest
-- goes to q_values_slow. Both are total (no error on any stored shape), so the triggers that
-- call them can never make a write fail.
CREATE OR REPLACE FUNCTION cityos.q_values_slow(instance jsonb)
    RETURNS TABLE (num numeric, txt text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT n::numeric, NULL::text
    FROM jsonb_path_query(jsonb_build_array(instance),
        'lax $[*].keyvalue() ? (@.key == "value" || @.key == "json" || @.key == "valueList")'
        '.value[*] ? (@.type() == "number")', '{}', true) AS n
    UNION ALL
    SELECT n::numeric, NULL::text
    FROM jsonb_path_query(jsonb_build_array(instance),
        'lax $[*]."languageMap".*[*] ? (@.type() == "number")', '{}', true) AS n
    UNION ALL
    SELECT NULL::numeric, s #>> '{}'
    FROM jsonb_path_query(jsonb_build_array(instance),
        'lax $[*].keyvalue() ? (@.key == "value" || @.key == "object" || @.key == "objectList"'
        ' || @.key == "vocab" || @.key == "json" || @.key == "valueList")'
        '.value[*] ? (@.type() == "string")', '{}', true) AS s
    WHERE octet_length(s #>> '{}') <= 512
    UNION ALL
    SELECT NULL::numeric, s #>> '{}'
    FROM jsonb_path_query(jsonb_build_array(instance),
        'lax $[*]."languageMap".*[*] ? (@.type() == "string")', '{}', true) AS s
    WHERE octet_length(s #>> '{}') <= 512
$$;

-- True for the common instance: an object without json/valueList/languageMap/objectList/vocab
-- whose value and object are no arrays. Its reach is its value (a number or string) and object
-- (a string).
CREATE OR REPLACE FUNCTION cityos.q_plain_instance(instance jsonb)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jsonb_typeof(instance) = 'object'
        AND NOT instance ?| ARRAY['json', 'valueList', 'languageMap', 'objectList', 'vocab']
        AND coalesce(jsonb_typeof(instance -> 'value'), '') <> 'array'
        AND coalesce(jsonb_typeof(instance -> 'object'), '') <> 'array';

CREATE OR REPLACE FUNCTION cityos.q_values(attrs jsonb)
    RETURNS TABLE (attr text, num numeric, txt text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT a.key,
           CASE WHEN x.is_value AND jsonb_typeof(x.v) = 'number' THEN x.v::numeric END,
           CASE WHEN jsonb_typeof(x.v) = 'string' THEN x.v #>> '{}' END
    FROM jsonb_each(CASE jsonb_typeof(attrs) WHEN 'object' THEN attrs END) AS a(key, inst)
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(a.inst) WHEN 'array' THEN a.inst ELSE jsonb_build_array(a.inst) END
    ) AS i(inst)
    CROSS JOIN LATERAL (VALUES (i.inst -> 'value', true), (i.inst -> 'object', false))
        AS x(v, is_value)
    WHERE cityos.q_plain_instance(i.inst)
      AND ((x.is_value AND jsonb_typeof(x.v) = 'number')
           OR (jsonb_typeof(x.v) = 'string' AND octet_length(x.v #>> '{}') <= 512))
    UNION ALL
    SELECT a.key, s.num, s.txt
    FROM jsonb_each(CASE jsonb_typeof(attrs) WHEN 'object' THEN attrs END) AS a(key, inst)
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE jsonb_typeof(a.inst) WHEN 'array' THEN a.inst ELSE jsonb_build_array(a.inst) END
    ) AS i(inst)
    CROSS JOIN LATERAL cityos.q_values_slow(i.inst) AS s
    WHERE NOT cityos.q_plain_instance(i.inst)
$$;
