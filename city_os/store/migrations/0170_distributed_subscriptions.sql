-- Distributed subscriptions (§5.8.1.4, city_os/federation/distributed_subscriptions.py): the
-- copies of a local Subscription created at context sources. ``remote_id`` is the copy's id at
-- the source, which the source's notifications name (they arrive at /ngsi-ld/ex/remote-notify);
-- ``copy`` is the body last sent, so a change of the local Subscription is forwarded only when
-- the copy differs.
CREATE TABLE IF NOT EXISTS cityos.distributed_subscriptions (
    remote_id        text PRIMARY KEY,
    tenant           text NOT NULL,
    subscription_id  text NOT NULL,
    registration_id  text NOT NULL,
    endpoint         text NOT NULL,           -- the source, to withdraw the copy from it
    source_tenant    text,                    -- NGSILD-Tenant at the source
    copy             jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS distributed_subscriptions_local
    ON cityos.distributed_subscriptions (tenant, subscription_id);
