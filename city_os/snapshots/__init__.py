"""Snapshots (NGSI-LD CIM 009 V1.9.1 draft, clause 5.16; resources /snapshots,
/snapshots/{snapshotId} and /snapshots/{snapshotId}/clone; the NGSILD-Snapshot header).

A Snapshot runs its ``snapshotQueries`` (Query data types, executed like Query Entities with
the distributed behaviour of §5.7.2.4) once, in the background, and keeps the entities found in
a frozen copy: a schema of its own built with the tenant DDL, so every read of the entity API
(query, retrieve, types, attributes, temporal) can be scoped to the copy by sending
``NGSILD-Snapshot: <id>`` and later changes to the live entities never reach it.

Room layout: model.py (pure: members, validation, the purge q), store.py (PostgreSQL: the
``cityos.snapshots`` rows and the copies), service.py (what each operation means, the fill),
api.py (HTTP handlers and the header scoping), openapi.py (the declarations).
"""
