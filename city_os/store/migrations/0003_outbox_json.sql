-- Outbox payloads are stored as json (validated text, no jsonb conversion) and published byte
-- for byte; event ids are uuid4 and need no unique index on the write path.
ALTER TABLE cityos.outbox ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE cityos.outbox DROP CONSTRAINT IF EXISTS outbox_event_id_key;
