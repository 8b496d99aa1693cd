"""What the bench sends: a realistic entity and the raw HTTP/1.1 requests of each scenario.

Pure functions, no I/O. Requests are built as bytes from pre-encoded pieces so that the load client
spends microseconds, not tens of microseconds, per request.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from bench.stellio_data import template_attrs

PREFIX = "/ngsi-ld/v1"
ENTITY_TYPE = "AirQualityObserved"
BATCH_SIZE = 100
UPDATED_ATTR = "temperature"

# A normalized AirQualityObserved entity: 8 attributes, one GeoProperty, one Relationship. No
# @context is sent, so the core context applies (the common case for plain JSON clients).
_ENTITY_ATTRS = {
    "dateObserved": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2026-05-01T09:00:00Z"},
    },
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [130.2988, 33.2635]},
    },
    "temperature": {"type": "Property", "value": 21.4, "unitCode": "CEL"},
    "relativeHumidity": {"type": "Property", "value": 0.62, "unitCode": "P1"},
    "no2": {"type": "Property", "value": 18.2, "unitCode": "GQ"},
    "pm25": {"type": "Property", "value": 9.1, "unitCode": "GQ"},
    "name": {"type": "Property", "value": "Saga Ekimae station"},
    "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:saga-aq-017"},
}
_ID_MARK = "@@ID@@"
_ENTITY_HEAD, _ENTITY_TAIL = orjson.dumps(
    {"id": _ID_MARK, "type": ENTITY_TYPE, **_ENTITY_ATTRS}
).split(_ID_MARK.encode())


# A normalized WeatherObserved (Smart Data Models, schemas/WeatherObserved): valid against the
# bundled schema, used by the validation scenario with that schema on and off.
_WEATHER_ATTRS = {
    "dateObserved": {
        "type": "Property",
        "value": {"@type": "DateTime", "@value": "2026-05-01T09:00:00Z"},
    },
    "location": {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [130.2988, 33.2635]},
    },
    "address": {
        "type": "Property",
        "value": {"addressLocality": "Saga", "addressRegion": "Saga", "addressCountry": "JP"},
    },
    "atmosphericPressure": {"type": "Property", "value": 1008.2},
    "dataProvider": {"type": "Property", "value": "Saga City"},
    "precipitation": {"type": "Property", "value": 0.5},
    "relativeHumidity": {"type": "Property", "value": 0.71},
    "temperature": {"type": "Property", "value": 21.4},
    "windDirection": {"type": "Property", "value": 135},
    "windSpeed": {"type": "Property", "value": 2.1},
    "source": {"type": "Property", "value": "https://www.city.saga.lg.jp"},
    "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:saga-wx-003"},
}
_WEATHER_HEAD, _WEATHER_TAIL = orjson.dumps(
    {"id": _ID_MARK, "type": "WeatherObserved", **_WEATHER_ATTRS}
).split(_ID_MARK.encode())
# Stellio's load-test template entity (bench.stellio_data), created as type "Entity".
_STELLIO_HEAD, _STELLIO_TAIL = orjson.dumps(
    {"id": _ID_MARK, "type": "Entity", **template_attrs()}
).split(_ID_MARK.encode())
ENTITY_MODELS: dict[str, tuple[bytes, bytes]] = {
    ENTITY_TYPE: (_ENTITY_HEAD, _ENTITY_TAIL),
    "WeatherObserved": (_WEATHER_HEAD, _WEATHER_TAIL),
    "Entity": (_STELLIO_HEAD, _STELLIO_TAIL),
}


def entity_id(prefix: str, seq: int, model: str = ENTITY_TYPE) -> str:
    return f"urn:ngsi-ld:{model}:{prefix}{seq}"


def entity_json(eid: str, model: str = ENTITY_TYPE) -> bytes:
    head, tail = ENTITY_MODELS[model]
    return head + eid.encode() + tail


def batch_json(prefix: str, first: int, size: int = BATCH_SIZE, model: str = ENTITY_TYPE) -> bytes:
    ids = (entity_id(prefix, first + k, model) for k in range(size))
    return b"[" + b",".join(entity_json(eid, model) for eid in ids) + b"]"


def retrieved_json(eid: str) -> bytes:
    """Roughly what GET /entities/{id} answers: the entity with its attributes, normalized."""
    return entity_json(eid)


def _with_body(head: bytes, body: bytes) -> bytes:
    return head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


_COMMON = b"Host: bench\r\nAccept: application/json\r\n"
_CREATE = b"POST " + PREFIX.encode() + b"/entities HTTP/1.1\r\n" + _COMMON
_CREATE += b"Content-Type: application/json\r\n"
_BATCH = b"POST " + PREFIX.encode() + b"/entityOperations/create HTTP/1.1\r\n" + _COMMON
_BATCH += b"Content-Type: application/json\r\n"
_PATCH_TAIL = b" HTTP/1.1\r\n" + _COMMON + b"Content-Type: application/json\r\n"
_GET_TAIL = b" HTTP/1.1\r\n" + _COMMON + b"\r\n"


@dataclass(frozen=True)
class Scenario:
    """One measured workload; ``existing`` = how many ``seed_prefix`` ids exist (reads, updates).

    ``query``: ``GET path`` (a query string included) repeated; ``tenant`` adds NGSILD-Tenant;
    ``model`` picks the entity that ``create`` sends (``ENTITY_MODELS``).
    """

    kind: str  # create | retrieve | update | batch | query
    prefix: str = "e"
    seed_prefix: str = "e"
    existing: int = 0
    path: str = ""
    tenant: str = ""
    model: str = ENTITY_TYPE
    token: str = ""  # a bearer token sent with every request (bench.auth)
    # Prepared raw requests, sent in turn (bench.stellio), answered with ``status``.
    requests: tuple[bytes, ...] = ()
    status: int = 0
    api: str = "ngsi-ld"  # "v2": the NGSIv2 requests of bench.ngsiv2

    @property
    def expected_status(self) -> int:
        if self.status:
            return self.status
        if self.api == "v2" and self.kind == "batch":
            return 204  # POST /v2/op/update
        return {"create": 201, "retrieve": 200, "update": 204, "batch": 201, "query": 200}[
            self.kind
        ]

    @property
    def entities_per_op(self) -> int:
        return BATCH_SIZE if self.kind == "batch" else 1


def tenant_header(tenant: str, token: str = "") -> bytes:
    out = f"NGSILD-Tenant: {tenant}\r\n".encode() if tenant else b""
    return out + (f"Authorization: Bearer {token}\r\n".encode() if token else b"")


def request_maker(sc: Scenario) -> Callable[[int], bytes]:
    """A function seq -> the raw bytes of request number ``seq`` of the scenario."""
    if sc.requests:
        prepared = sc.requests
        return lambda seq: prepared[seq % len(prepared)]
    if sc.api == "v2":
        from bench.ngsiv2 import v2_requests

        return v2_requests(sc)
    if sc.kind == "query":
        get = b"GET " + sc.path.encode() + b" HTTP/1.1\r\n" + _COMMON
        get += tenant_header(sc.tenant, sc.token) + b"\r\n"
        return lambda seq: get
    if sc.kind == "create":
        create = _CREATE + tenant_header(sc.tenant, sc.token)
        return lambda seq: _with_body(
            create, entity_json(entity_id(sc.prefix, seq, sc.model), sc.model)
        )
    if sc.kind == "batch":
        batch = _BATCH + tenant_header(sc.tenant, sc.token)
        return lambda seq: _with_body(
            batch, batch_json(sc.prefix, seq * BATCH_SIZE, model=sc.model)
        )
    if sc.existing <= 0:
        raise ValueError(f"{sc.kind} needs existing entities")
    pick = random.Random(42).randrange
    path = (PREFIX + "/entities/").encode()
    if sc.kind == "retrieve":
        tail = _GET_TAIL
        if sc.tenant or sc.token:
            tail = b" HTTP/1.1\r\n" + _COMMON + tenant_header(sc.tenant, sc.token) + b"\r\n"
        return lambda seq: (
            b"GET " + path + entity_id(sc.seed_prefix, pick(sc.existing), sc.model).encode() + tail
        )
    if sc.kind == "update":
        attr = f"/attrs/{UPDATED_ATTR}".encode()
        patch_tail = _PATCH_TAIL + tenant_header(sc.tenant, sc.token)

        def patch(seq: int) -> bytes:
            eid = entity_id(sc.seed_prefix, pick(sc.existing), sc.model).encode()
            body = b'{"value":' + str(seq % 400 / 10).encode() + b"}"
            return _with_body(b"PATCH " + path + eid + attr + patch_tail, body)

        return patch
    raise ValueError(f"unknown scenario kind {sc.kind!r}")
