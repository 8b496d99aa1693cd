-- Outbox payloads are stored as json (validated text, no jsonb conversion) and published byte
-- for byte; event ids are uuid4 and need no unique index on the write path.
ALTER TABLE cityos.outbox ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE cityos.outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
-- lz4 compresses the ~4 KB envelopes several times faster than the default pglz (PostgreSQL
-- built without lz4 keeps pglz).
DO $$
BEGIN
    ALTER TABLE cityos.outbox ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available; outbox payloads keep the default compression';
END
$$;
