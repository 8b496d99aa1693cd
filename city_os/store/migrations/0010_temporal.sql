-- Temporal API (issue #11): per-tenant retention of attribute history. The per-tenant tables
-- are in tenant_temporal.sql. No row = the defaults (history kept, no retention limit).
CREATE TABLE IF NOT EXISTS cityos.temporal_settings (
    tenant          text PRIMARY KEY,       -- NGSILD-Tenant value ('' = default tenant)
    capture         boolean NOT NULL DEFAULT true,  -- false: no history recorded
    retention_days  integer CHECK (retention_days IS NULL OR retention_days > 0),
    modified_at     timestamptz NOT NULL DEFAULT now()
);
