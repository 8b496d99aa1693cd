-- The outbox relay's memory of what Kafka acknowledged, kept across relay restarts
-- (city_os/events/lost_log.py, relay.py, docs/storage.md).

-- The highest offset Kafka acknowledged per partition of the topic, written in the transaction
-- that marks the batch published: a relay that starts (or becomes the active one) reads it, so
-- an acknowledgement at or below it — Kafka lost its log meanwhile, even while no relay ran — is
-- noticed on the first publish.
CREATE TABLE IF NOT EXISTS cityos.relay_offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    acked       bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- A republication of the outbox's retained window under way (Kafka lost its log): the relay
-- publishes every row after `after_seq` in seq order, batch by batch, moving `after_seq` in the
-- same transaction; a relay restarted mid-way continues where it stopped. No row: none under way.
CREATE TABLE IF NOT EXISTS cityos.relay_replay (
    topic       text PRIMARY KEY,
    after_seq   bigint NOT NULL
);
