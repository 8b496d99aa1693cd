"""Example consumer: print alerts from the city-os change stream.

Prints a line when a WaterObserved water level goes over a threshold (only on the crossing, from
the ``previous``/``new`` values in the event) and for every Alert entity created or updated.
Run next to ``make run``::

    .venv/bin/python examples/alert_consumer.py --bootstrap 127.0.0.1:9092 --threshold 3.5

It joins the consumer group ``--group`` (offsets are committed after each event is handled, so a
restart resumes where it stopped) and ignores repeats of an event id.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from city_os.events import ChangeEvent, consume

WATER_LEVEL = "waterLevel"


def _level(instances: list[dict[str, Any]] | None) -> float | None:
    if not instances:
        return None
    value = instances[0].get("value")
    return float(value) if isinstance(value, int | float) else None


def alert_line(event: ChangeEvent, threshold: float) -> str | None:
    """The line to print for ``event``, or None."""
    where = f"[{event.tenant or 'default'}] {event.entity_id}"
    if any(t.endswith("/Alert") for t in event.types) and event.kind in {"created", "updated"}:
        return f"ALERT {where}: {event.value('category')} / {event.value('subCategory')}"
    for iri, change in event.changes.items():
        if iri.endswith("/" + WATER_LEVEL):
            before, after = _level(change["previous"]), _level(change["new"])
            if after is not None and after > threshold and (before is None or before <= threshold):
                return f"WATER LEVEL {where}: {after} > {threshold} (was {before})"
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="cityos.entity-changes")
    parser.add_argument("--group", default="alert-printer")
    parser.add_argument("--tenant", action="append", help="only these tenants (repeatable)")
    parser.add_argument("--threshold", type=float, default=3.0, help="water level, metres")
    args = parser.parse_args()
    async for event in consume(
        args.bootstrap,
        topic=args.topic,
        group_id=args.group,
        tenants=args.tenant,
        types=["WaterObserved", "Alert"],
    ):
        line = alert_line(event, args.threshold)
        if line:
            print(event.time, line, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
