-- q_datetime(text): an ISO 8601 date-time as the instant it names, whether it ends in "Z", in a
-- UTC offset ("+09:00", as Japanese data often writes it) or in neither (read in the session's
-- time zone, UTC for city-os); NULL for anything else, never an error (so a bad stored value can
-- never fail a query). orderBy sorts DateTime values with it: as text, "09:00+09:00" would
-- follow "01:00Z" although they are the same instant.
CREATE OR REPLACE FUNCTION cityos.q_datetime(value text) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    RETURN (jsonb_path_query_first_tz(to_jsonb(regexp_replace(value, '[Zz]$', '+00:00')),
                                      '$.datetime()', '{}', true) #>> '{}')::timestamptz;
