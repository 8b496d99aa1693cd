-- Access control (docs/access-control.md): API keys, citizens' consents, the citizens' access log
-- and the audit log of access changes. Permissions and data subjects belong to one tenant's
-- entities and live in its schema (tenant.sql). Changes are announced on the channels
-- cityos_apikeys, cityos_permissions and cityos_consents, so every broker process refreshes what
-- it keeps in memory.

-- Machine clients' API keys: shown once at creation, stored as sha256 of the key (the key is
-- 256 random bits, so a fast hash cannot be brute-forced; see auth/apikeys.py).
CREATE TABLE IF NOT EXISTS cityos.api_keys (
    id           text PRIMARY KEY,          -- public part of the key: cityos_<id>_<secret>
    tenant       text NOT NULL,             -- the one NGSILD-Tenant it acts in
    name         text NOT NULL,             -- what it is for ("river level sensors")
    secret_hash  bytea NOT NULL,            -- sha256 of the whole key
    operations   text[] NOT NULL,           -- read, create, update, delete
    types        text[] NOT NULL DEFAULT '{}', -- expanded entity types; empty = any type
    origin       text,                      -- the only browser Origin it may be used from
    created_by   text NOT NULL,             -- actor (cityosactor form)
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz                -- written in batches, not per request
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON cityos.api_keys (tenant);

-- A citizen's consent that a service (OIDC client id) reads their entities of some types.
CREATE TABLE IF NOT EXISTS cityos.consents (
    id          uuid PRIMARY KEY,
    tenant      text NOT NULL,
    issuer      text NOT NULL,              -- the citizen: iss and sub at the citizens' IdP
    subject     text NOT NULL,
    client      text NOT NULL,              -- the service: azp / client_id of its tokens
    types       text[] NOT NULL,            -- expanded entity types
    purpose     text NOT NULL,              -- shown to the citizen when asked
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS consents_subject ON cityos.consents (tenant, issuer, subject);
CREATE INDEX IF NOT EXISTS consents_client ON cityos.consents (tenant, client, issuer, subject)
    WHERE revoked_at IS NULL;

-- Every read of a citizen's entity by a service under a consent. Append-only, partitioned by
-- month (store/postgres/auth_log.py creates partitions ahead and drops those past retention).
CREATE TABLE IF NOT EXISTS cityos.access_log (
    at          timestamptz NOT NULL,
    tenant      text NOT NULL,
    issuer      text NOT NULL,              -- whose data: the citizen
    subject     text NOT NULL,
    client      text NOT NULL,              -- the service that read it
    actor       text NOT NULL,              -- who exactly (cityosactor form)
    consent_id  uuid,
    entity_id   text NOT NULL,
    operation   text NOT NULL               -- read, query, notification
) PARTITION BY RANGE (at);
CREATE INDEX IF NOT EXISTS access_log_subject ON cityos.access_log (tenant, issuer, subject, at);

-- Changes of permissions, API keys, consents and data subjects: who, when, what. Append-only,
-- partitioned like the access log.
CREATE TABLE IF NOT EXISTS cityos.audit_log (
    at          timestamptz NOT NULL DEFAULT now(),
    tenant      text NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,              -- permission.created, apikey.revoked, consent.granted…
    resource    text NOT NULL,              -- its id
    detail      jsonb NOT NULL
) PARTITION BY RANGE (at);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON cityos.audit_log (tenant, at);
