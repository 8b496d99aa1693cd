-- The notifier's shared state: durable deliveries and the cluster-wide timers of periodic and
-- throttled subscriptions (city_os/store/postgres/notifications.py, docs/storage.md).

-- One row per notification to deliver, written before the Kafka offset of its event is committed;
-- unique per (subscription, source) so a re-consumed event does not notify twice. A row is leased
-- by the notifier replica that sends it (owner, lease_until); an expired lease lets another
-- replica take it over. Delivered rows keep their key (the body is dropped) for a retention
-- window, then they are deleted in bulk.
CREATE TABLE IF NOT EXISTS cityos.notifications (
    seq             bigserial PRIMARY KEY,
    notification_id uuid NOT NULL,          -- the Notification's id: the same on every retry
    tenant          text NOT NULL,
    subscription_id text NOT NULL,
    source_id       uuid NOT NULL,          -- the change event's id (or one per period)
    entity_id       text NOT NULL,          -- order key with the subscription ('' periodic)
    endpoint        text NOT NULL,          -- endpoint URI: the delivery queue
    headers         jsonb NOT NULL,
    body            bytea,
    event_time      timestamptz,            -- when the change was made (latency)
    state           text NOT NULL DEFAULT 'pending',  -- pending | sent | failed | dropped
    attempts        integer NOT NULL DEFAULT 0,
    owner           uuid,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (tenant, subscription_id, source_id)
);
CREATE INDEX IF NOT EXISTS notifications_leases ON cityos.notifications (lease_until)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS notifications_owned ON cityos.notifications (owner, endpoint, seq)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS notifications_done ON cityos.notifications (done_at)
    WHERE state <> 'pending';
-- A queue like the outbox: vacuum it often (see 0005_outbox_autovacuum.sql).
ALTER TABLE cityos.notifications SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);

-- Periodic (timeInterval) and throttled subscriptions, once per interval in the whole cluster:
-- a replica fires or sends only by moving `due` forward in an UPDATE … WHERE due <= now().
CREATE TABLE IF NOT EXISTS cityos.subscription_timers (
    tenant          text NOT NULL,
    subscription_id text NOT NULL,
    kind            text NOT NULL,          -- interval | throttle
    period          double precision NOT NULL,  -- seconds
    due             timestamptz NOT NULL,
    PRIMARY KEY (tenant, subscription_id, kind)
);
CREATE INDEX IF NOT EXISTS subscription_timers_due ON cityos.subscription_timers (due)
    WHERE kind = 'interval';
