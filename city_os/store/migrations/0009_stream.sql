-- The live stream of web pages (Server-Sent Events, city_os/api/streams.py): the notifications of
-- subscriptions whose endpoint is urn:city-os:stream, kept for CITYOS_STREAM_RETENTION seconds so
-- a page that reconnects with Last-Event-ID (the seq) receives what it missed. The notifier writes
-- a row and NOTIFYs cityos_stream in the same statement; every API process LISTENs and hands the
-- row to the connections of that subscription.
CREATE TABLE IF NOT EXISTS cityos.stream_events (
    seq             bigserial PRIMARY KEY,   -- the SSE event id
    tenant          text NOT NULL,
    subscription_id text NOT NULL,
    notification_id text NOT NULL,
    body            bytea NOT NULL,          -- the Notification, as JSON
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, subscription_id, notification_id)
);
CREATE INDEX IF NOT EXISTS stream_events_of ON cityos.stream_events (tenant, subscription_id, seq);
CREATE INDEX IF NOT EXISTS stream_events_age ON cityos.stream_events (created_at);
