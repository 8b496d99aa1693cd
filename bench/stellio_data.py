"""Stellio's load-test workload (stellio-hub/ngsild-load-tests): its entity, data set and requests.

Layer: bench/. Pure, no I/O, deterministic (seeded). The entity is the load tests'
``template_entity.json`` (6 Properties, two of them with two datasetId instances, one with a
sub-Property; one Relationship; one GeoProperty), written here from its description, not copied.
The data set follows the tests' ``setup()``: ids ``urn:ngsi-ld:Entity:<uuid>``, the type one of
``TYPES`` random 10-letter names, every observed value (``ammonium`` ×2, ``waterTemperature``
×2, ``dissolvedOxygen``) uniform in [0, 100), ``servesDataset`` one of ``RELATIONS`` random
URNs. The first ``n`` entities of the set are the data set of size ``n`` (so a larger size is
loaded on top of a smaller one). Queries follow the tests' ``default()``: a random type, a
random observed property ``> randomIntBetween(0, 100)`` and a static equality, or the
relationship object.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TYPES_COUNT = 5  # the tests' INITIAL_NUMBER_OF_TYPES
RELATIONS_COUNT = 10  # INITIAL_NUMBER_OF_RELATIONSHIPS
OBSERVED = ("ammonium", "waterTemperature", "dissolvedOxygen")
STATIC = (
    ("name", "Name of my entity"),
    ("description", "A short description of my entity"),
    ("stationCode", "BSS002JAWM"),
)
UPDATED_ATTR = "dissolvedOxygen"  # the partial attribute update's target
OBSERVED_AT = "2023-04-01T12:00:00Z"
_SEED = 2024


def _names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    rnd = random.Random(_SEED)
    types = tuple(
        "".join(rnd.choice(string.ascii_lowercase) for _ in range(10)) for _ in range(TYPES_COUNT)
    )
    relations = tuple(
        f"urn:ngsi-ld:Relation:{uuid.UUID(int=rnd.getrandbits(128), version=4)}"
        for _ in range(RELATIONS_COUNT)
    )
    return types, relations


TYPES, RELATIONS = _names()


@dataclass(frozen=True)
class Station:
    id: str
    type: str
    ammonium: tuple[float, float]
    water: tuple[float, float]
    oxygen: float
    serves: str

    def observed(self, attr: str) -> tuple[float, ...]:
        return {"ammonium": self.ammonium, "waterTemperature": self.water}.get(attr, (self.oxygen,))


def stations(n: int) -> list[Station]:
    rnd = random.Random(_SEED + 1)
    out = []
    for _ in range(n):
        eid = f"urn:ngsi-ld:Entity:{uuid.UUID(int=rnd.getrandbits(128), version=4)}"
        values = [round(rnd.uniform(0, 100), 6) for _ in range(5)]
        out.append(
            Station(
                id=eid,
                type=rnd.choice(TYPES),
                ammonium=(values[0], values[1]),
                water=(values[2], values[3]),
                oxygen=values[4],
                serves=rnd.choice(RELATIONS),
            )
        )
    return out


def _instances(attr: str, values: tuple[float, ...], unit: str) -> Any:
    datasets = ("urn:ngsi-ld:Dataset:Bottom", "urn:ngsi-ld:Dataset:Surface")
    return [
        {
            "type": "Property",
            "value": v,
            "observedAt": OBSERVED_AT,
            "unitCode": unit,
            "datasetId": ds,
        }
        for v, ds in zip(values, datasets, strict=True)
    ]


def oxygen(value: float) -> dict[str, Any]:
    return {
        "type": "Property",
        "sandreCode": {"type": "Property", "value": "1311"},
        "value": value,
        "observedAt": OBSERVED_AT,
        "unitCode": "M1",
    }


def observations(ammonium: Any, water: Any, oxygen_value: float) -> dict[str, Any]:
    """The three observed attributes (the update-attributes fragment)."""
    return {
        "ammonium": _instances("ammonium", ammonium, "M1"),
        "dissolvedOxygen": oxygen(oxygen_value),
        "waterTemperature": _instances("waterTemperature", water, "CEL"),
    }


def entity(s: Station) -> dict[str, Any]:
    return {
        "id": s.id,
        "type": s.type,
        **{attr: {"type": "Property", "value": value} for attr, value in STATIC},
        **observations(s.ammonium, s.water, s.oxygen),
        "servesDataset": {"type": "Relationship", "object": s.serves},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [3.53452158, 43.48562782]},
        },
    }


def template_attrs() -> dict[str, Any]:
    """The template entity's attributes (what the create scenario sends with a fresh id)."""
    t = entity(Station("", "Entity", (0.34, 0.41), (10.9, 12.9), 8.9, RELATIONS[0]))
    del t["id"], t["type"]
    t["servesDataset"]["object"] = "urn:ngsi-ld:Dataset:SurfaceWaterMonitoring"
    return t


# ------------------------------------------------------------------------------------ queries


@dataclass(frozen=True)
class Query:
    """``type=T&q=<observed>>N;<other>`` with ``other`` a static equality or the relationship."""

    type: str
    observed: str
    above: int
    other: tuple[str, str]  # (attribute, value)
    relationship: bool

    @property
    def q(self) -> str:
        attr, value = self.other
        rhs = value if self.relationship else f'"{value}"'
        return f"{self.observed}>{self.above};{attr}=={rhs}"

    def matches(self, s: Station) -> bool:
        if s.type != self.type or not any(v > self.above for v in s.observed(self.observed)):
            return False
        return s.serves == self.other[1] if self.relationship else True


def queries(relationship: bool, count: int, seed: int = 5) -> Iterator[Query]:
    rnd = random.Random(seed + relationship)
    for _ in range(count):
        other = ("servesDataset", rnd.choice(RELATIONS)) if relationship else rnd.choice(STATIC)
        yield Query(
            rnd.choice(TYPES), rnd.choice(OBSERVED), rnd.randint(0, 100), other, relationship
        )


# Stellio's published figures (docs/admin/performance.md, September 2024: 8 vCPU server, 10 VUs):
# scenario -> size -> (req/s, p95 ms). Writes were measured at one size only.
PUBLISHED: dict[str, dict[int, tuple[float, float]]] = {
    "create": {100_000: (221, 70)},
    "partial": {1_000: (375, 36)},
    "update": {1_000: (179, 80)},
    "qprop": {1_000: (33, 269), 10_000: (30, 343), 100_000: (32, 1440)},
    "qrel": {1_000: (36, 169), 10_000: (30, 298), 100_000: (32, 547)},
}


def published(key: str, size: int) -> tuple[float, float, int] | None:
    """Stellio's figure for the scenario at this size, else at its one measured size."""
    table = PUBLISHED[key]
    at = size if size in table else next(iter(table))
    if key.startswith("q") and at != size:
        return None
    rate, p95 = table[at]
    return rate, p95, at
