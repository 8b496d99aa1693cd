"""Change events: the CloudEvents model, the outbox relay and the consumer helper."""

from city_os.events.consume import ChangeEvent, consume

__all__ = ["ChangeEvent", "consume"]
