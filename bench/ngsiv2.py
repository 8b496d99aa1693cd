"""NGSIv2 throughput (issue #14): v2 create, retrieve, attribute update and op/update next to
the NGSI-LD create, retrieve, partial update and batch create of the same run, same server.

Layer: bench/. The v2 entity is the bench's AirQualityObserved in v2 form (Number attributes with
unitCode metadata, DateTime, geo:json, Relationship) under a non-URI id, so every request goes
through the id mapping and the attribute translation. ``op/update`` appends ``BATCH_SIZE`` new
entities per request (one NGSI-LD batch upsert); its NGSI-LD counterpart is the batch create of
as many. Target: every v2 figure ≥ 90 % of its NGSI-LD figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson

from bench.runner import Measured, Runner
from bench.workload import BATCH_SIZE, UPDATED_ATTR, Scenario

TARGET = 0.90
ENTITY_TYPE = "AirQualityObserved"
# The default tenant for both APIs: the NGSI-LD update and batch requests of bench.workload
# carry no tenant header (distinct id prefixes keep the two APIs' entities apart).
_COMMON = b"Host: bench\r\nAccept: application/json\r\n"
_JSON = b"Content-Type: application/json\r\n"
_ATTRS = {
    "dateObserved": {"type": "DateTime", "value": "2026-05-01T09:00:00Z"},
    "location": {
        "type": "geo:json",
        "value": {"type": "Point", "coordinates": [130.2988, 33.2635]},
    },
    "temperature": {"type": "Number", "value": 21.4, "metadata": {"unitCode": {"value": "CEL"}}},
    "relativeHumidity": {
        "type": "Number",
        "value": 0.62,
        "metadata": {"unitCode": {"value": "P1"}},
    },
    "no2": {"type": "Number", "value": 18.2, "metadata": {"unitCode": {"value": "GQ"}}},
    "pm25": {"type": "Number", "value": 9.1, "metadata": {"unitCode": {"value": "GQ"}}},
    "name": {"type": "Text", "value": "Saga Ekimae station"},
    "refDevice": {"type": "Relationship", "value": "Device-saga-aq-017"},
}
_MARK = "@@ID@@"
_HEAD, _TAIL = orjson.dumps({"id": _MARK, "type": ENTITY_TYPE, **_ATTRS}).split(_MARK.encode())
PAIRS = (  # (label, v2 kind, NGSI-LD kind)
    ("create", "create", "create"),
    ("retrieve", "retrieve", "retrieve"),
    ("update", "update", "update"),
    ("op/update", "batch", "batch"),
)


def v2_id(prefix: str, seq: int) -> str:
    return f"aq-{prefix}{seq}"


def _entity(eid: str) -> bytes:
    return _HEAD + eid.encode() + _TAIL


def _with_body(head: bytes, body: bytes) -> bytes:
    return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def v2_requests(sc: Scenario) -> Callable[[int], bytes]:
    """seq -> the raw request of a v2 scenario (``Scenario.api == "v2"``)."""
    import random

    if sc.kind == "create":
        head = b"POST /v2/entities HTTP/1.1\r\n" + _COMMON + _JSON
        return lambda seq: _with_body(head, _entity(v2_id(sc.prefix, seq)))
    if sc.kind == "batch":
        head = b"POST /v2/op/update HTTP/1.1\r\n" + _COMMON + _JSON

        def batch(seq: int) -> bytes:
            items = b",".join(
                _entity(v2_id(sc.prefix, seq * BATCH_SIZE + k)) for k in range(BATCH_SIZE)
            )
            return _with_body(head, b'{"actionType":"append","entities":[' + items + b"]}")

        return batch
    pick = random.Random(42).randrange
    if sc.kind == "retrieve":
        tail = b" HTTP/1.1\r\n" + _COMMON + b"\r\n"
        return lambda seq: (
            b"GET /v2/entities/" + v2_id(sc.seed_prefix, pick(sc.existing)).encode() + tail
        )
    if sc.kind == "update":
        tail = b"/attrs HTTP/1.1\r\n" + _COMMON + _JSON

        def patch(seq: int) -> bytes:
            eid = v2_id(sc.seed_prefix, pick(sc.existing)).encode()
            body = (
                b'{"'
                + UPDATED_ATTR.encode()
                + b'":{"value":'
                + str(seq % 400 / 10).encode()
                + b"}}"
            )
            return _with_body(b"PATCH /v2/entities/" + eid + tail, body)

        return patch
    raise ValueError(f"unknown v2 scenario kind {sc.kind!r}")


@dataclass
class NgsiV2Results:
    runs: dict[tuple[str, str], Measured] = field(default_factory=dict)  # (api, label)


def run(runner: Runner, port: int, pids: list[int]) -> NgsiV2Results:
    out = NgsiV2Results()
    for api, prefix in (("ngsi-ld", "l2"), ("v2", "v2")):
        created = 0
        for label, v2_kind, ld_kind in PAIRS:
            kind = v2_kind if api == "v2" else ld_kind
            sc = Scenario(
                kind,
                prefix=f"{prefix}{kind[0]}-",
                seed_prefix=f"{prefix}c-",
                existing=created or 1,
            )
            sc = replace(sc, api=api)
            out.runs[(api, label)] = runner.http(port, sc, pids, f"ngsiv2-{api}-{kind}")
            if kind == "create":
                created = out.runs[(api, label)].result.sent
    return out


def print_results(res: NgsiV2Results) -> None:
    print(f"\nNGSIv2 vs NGSI-LD, same server and run (target v2 ≥ {100 * TARGET:.0f} %)")
    for label, _, _ in PAIRS:
        ld, v2 = res.runs[("ngsi-ld", label)], res.runs[("v2", label)]
        per_op = BATCH_SIZE if label == "op/update" else 1
        r_ld, r_v2 = ld.result.rate(per_op), v2.result.rate(per_op)
        share = r_v2 / r_ld if r_ld else 0.0
        unit = "entities/s" if per_op > 1 else "req/s"
        verdict = "PASS" if share >= TARGET else "MISS"
        print(
            f"  {label:<9} v2 {r_v2:>8.0f} {unit:<10} (p50 {v2.result.p50_ms:5.1f} ms, errors "
            f"{v2.result.errors})  NGSI-LD {r_ld:>8.0f} (p50 {ld.result.p50_ms:5.1f} ms, errors "
            f"{ld.result.errors})  {100 * share:5.1f} %  {verdict}"
        )
