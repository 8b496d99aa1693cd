"""The query scenarios' data set: 100,000 sensor entities of 5 types spread over Saga City.

Pure, no I/O, deterministic (seeded): the bench can tell what a query must find without asking
the server. Every entity has numbers (temperature 0–40 °C, so ~25 % are above 30; humidity),
strings (name, status), a DateTime, a Relationship ``refParent`` to one of ``PARENTS`` District
entities (which are loaded too, ~500 children each) and a GeoProperty Point, uniform over
lon 130.18–130.40, lat 33.18–33.33. Ids are ``urn:ngsi-ld:<Type>:…`` as in real deployments, so
the entities of one type are contiguous in id order (what ``ORDER BY e.id`` walks).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

TYPES = (
    "AirQualityObserved",
    "NoiseLevelObserved",
    "ParkingSpot",
    "Streetlight",
    "WeatherObserved",
)
PER_TYPE = 20_000
PARENTS = 200
LON = (130.18, 130.40)
LAT = (33.18, 33.33)
STATUSES = ("ok", "ok", "ok", "warning", "fault")


@dataclass(frozen=True)
class Sensor:
    id: str
    type: str
    temperature: float
    parent: str
    lon: float
    lat: float


def parent_id(k: int) -> str:
    return f"urn:ngsi-ld:District:saga-{k:03d}"


def sensors(seed: int = 7) -> Iterator[Sensor]:
    rnd = random.Random(seed)
    for t in TYPES:
        for n in range(PER_TYPE):
            yield Sensor(
                id=f"urn:ngsi-ld:{t}:saga-{n:05d}",
                type=t,
                temperature=round(rnd.uniform(0.0, 40.0), 1),
                parent=parent_id(rnd.randrange(PARENTS)),
                lon=round(rnd.uniform(*LON), 6),
                lat=round(rnd.uniform(*LAT), 6),
            )


def normalized(s: Sensor, n: int) -> dict[str, object]:
    return {
        "id": s.id,
        "type": s.type,
        "temperature": {"type": "Property", "value": s.temperature, "unitCode": "CEL"},
        "humidity": {"type": "Property", "value": round(0.3 + (n % 60) / 100, 2)},
        "name": {"type": "Property", "value": f"{s.type} {n} (Saga)"},
        "status": {"type": "Property", "value": STATUSES[n % len(STATUSES)]},
        "dateObserved": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": f"2026-05-01T{n % 24:02d}:00:00Z"},
        },
        "refParent": {"type": "Relationship", "object": s.parent},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [s.lon, s.lat]},
        },
    }


def districts() -> list[dict[str, object]]:
    return [
        {"id": parent_id(k), "type": "District", "name": {"type": "Property", "value": f"D{k}"}}
        for k in range(PARENTS)
    ]


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (mean Earth radius): within ~0.5 % of PostGIS's spheroid."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))
