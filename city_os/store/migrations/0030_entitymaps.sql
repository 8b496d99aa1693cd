-- EntityMaps (§5.14, city_os/federation/entitymap.py): which entity of a distributed query lives
-- where (``@none`` = this broker, else registration ids), kept so the pages of the query stay
-- consistent. One row per map; expired rows are not served and are swept on access.
CREATE TABLE IF NOT EXISTS cityos.entity_maps (
    tenant      text NOT NULL,
    id          text NOT NULL,
    expires_at  timestamptz NOT NULL,
    query       jsonb NOT NULL,           -- the query parameters the map was made for
    entity_map  jsonb NOT NULL,           -- [[entity id, [place, ...]], ...] in answer order
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS entity_maps_expiry ON cityos.entity_maps (expires_at);
