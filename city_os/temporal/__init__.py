"""The Temporal API (ETSI GS CIM 009 §5.6.11-5.6.19, §5.7.3-5.7.4, §6.18-6.22): attribute history.

Layer: temporal/ — its own room. ``params`` parses the temporal query (pure), ``render`` turns
instance rows into the normalized, temporalValues and aggregated representations (pure),
``service`` holds the semantics of each operation (core level) on ``store.postgres.temporal``.
History is captured by triggers on the entity table (store/migrations/tenant_temporal.sql), in
the same transaction as every entity write.
"""
