-- The outbox is a queue: every row is inserted, updated once (published_at) and deleted after the
-- retention, so it makes dead tuples at the rate of writes. The relay finds its work through the
-- partial index outbox_unpublished, whose entries of published rows stay until a vacuum; the
-- default trigger (20 % of the table dead) lets a day's retention pile up hundreds of thousands.
-- Vacuum it after every 10,000 dead (or inserted) rows instead, without throttling.
ALTER TABLE cityos.outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);
