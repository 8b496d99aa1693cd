-- Access control (docs/access-control.md, "Subscriptions"): the latest verified token of each
-- OIDC user, so that a subscription's notifications are decided with the owner's current tenant
-- roles and groups rather than those frozen at its creation. Written when the broker verifies a
-- token whose roles, groups or expiry differ from what is recorded (auth/owners.py).
CREATE TABLE IF NOT EXISTS cityos.owner_identities (
    key              text PRIMARY KEY,      -- subject:<iss>#<sub> (an owner key)
    roles            jsonb NOT NULL,        -- {tenant: [role, …]} of the latest token
    groups           text[] NOT NULL,       -- group claim values and raw role values
    token_expires_at timestamptz,           -- exp of the latest token
    seen_at          timestamptz NOT NULL DEFAULT now()
);
