"""The notifier: subscription matching and notification delivery (§5.8.6).

A Kafka consumer group on the change-event topic (consumer.py) matches each change against an
in-memory index of the active subscriptions (index.py, match.py), renders the notifications
(render.py), stores them durably before committing the offset (store/postgres/notifications.py)
and hands them to one bounded queue per endpoint (dispatch.py), which delivers them through the
channel of the endpoint's URI scheme (channels/), retrying with back-off. Periodic and throttled
subscriptions hold across replicas through PostgreSQL timers (periodic.py); delivery status is
written back in batches (status.py). service.py wires it together for ``city-os serve`` and
``city-os notifier``.
"""
