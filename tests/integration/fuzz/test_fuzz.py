"""Property-based fuzzing of every operation of the OpenAPI document (schemathesis).

For each operation, schemathesis generates requests from the document (valid ones, and with
``CITYOS_FUZZ_NEGATIVE`` also invalid ones) against a real broker on PostgreSQL. Each response
must: not be a 5xx (but a 501 the operation documents); have a status, content type, headers
and body the document declares; and, when it is an error, leave the tenant's rows (entities,
geometries, history, context source registrations, subscriptions, permissions, data subjects,
schemas, indexes, keys, consents, @contexts and the outbox) exactly as before. The operations
are those of the document, so a route a room adds is fuzzed as soon as it is declared.

``make test`` runs ``CITYOS_FUZZ_EXAMPLES`` (default 1: about a minute on 2 cores) examples per
operation; ``make fuzz`` runs many more (see the Makefile). ``CITYOS_FUZZ_TRACE=FILE`` appends one
line per request (time, method, path, status) to FILE.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from city_os.app import create_app
from city_os.openapi.document import build
from tests.conftest import test_settings as settings_for_tests
from tests.integration.fuzz.broker import ThreadBroker

EXAMPLES = int(os.environ.get("CITYOS_FUZZ_EXAMPLES", "1"))
MODES = [GenerationMode.POSITIVE]
if os.environ.get("CITYOS_FUZZ_NEGATIVE"):
    MODES.append(GenerationMode.NEGATIVE)
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TENANT = "test-fuzz-" + uuid.uuid4().hex[:8]
SEEDED = [f"urn:ngsi-ld:FuzzPoint:{i}" for i in range(3)]
SEEDED_ATTRS = ("level", "owner", "location")
# (entity, attribute) -> the instanceId of its seeded history instance (temporal paths)
INSTANCES: dict[tuple[str, str], str] = {}
LINK = (
    "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)

schema = schemathesis.openapi.from_dict(build(create_app(settings_for_tests())))
schema.config.generation.update(modes=MODES, max_examples=EXAMPLES)
# The coverage phase sends every boundary case of every parameter (thousands per operation):
# only for the long run.
schema.config.phases.coverage.enabled = bool(os.environ.get("CITYOS_FUZZ_COVERAGE"))


def _seed(url: str) -> None:
    for entity_id in SEEDED:
        body = {
            "id": entity_id,
            "type": "FuzzPoint",
            "level": {"type": "Property", "value": 3, "observedAt": "2026-12-01T00:00:00Z"},
            "owner": {"type": "Relationship", "object": SEEDED[0]},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [130.3, 33.25]}},
        }  # fmt: skip
        resp = requests.post(
            url + "/ngsi-ld/v1/entities",
            json=body,
            headers={"NGSILD-Tenant": TENANT, "Link": LINK},
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        resp = requests.get(
            url + "/ngsi-ld/v1/temporal/entities/" + entity_id,
            headers={"NGSILD-Tenant": TENANT, "Link": LINK},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        for attr in SEEDED_ATTRS:
            INSTANCES[(entity_id, attr)] = resp.json()[attr][0]["instanceId"]


@pytest.fixture(scope="module")
def broker() -> Iterator[ThreadBroker]:
    running = ThreadBroker(settings_for_tests())
    running.start()
    try:
        _seed(running.url)
        seeded = running.state(TENANT)  # the digests see the seeded rows, history included
        assert seeded["entities"].startswith("3:"), seeded
        assert not seeded["attr_instances"].startswith(("absent", "0:")), seeded
        yield running
    finally:
        running.stop()


def _aim(case: schemathesis.Case) -> None:
    """Every request goes to the test's tenant; three in four drop a generated Link header;
    half of those naming an entity name a seeded one, so updates and deletes meet an entity
    that exists (others meet a 404); of those, two in three naming an attribute name one of
    the entity's, and half of those naming an instance name its seeded history instance."""
    digest = hashlib.sha256(repr((case.body, case.query, case.headers)).encode()).digest()
    headers = {**(case.headers or {}), "NGSILD-Tenant": TENANT}
    if digest[2] % 4:  # a random Link header is refused before anything else is looked at
        headers.pop("Link", None)
    case.headers = headers
    params = case.path_parameters or {}
    entity = SEEDED[digest[1] % len(SEEDED)]
    aimed = False
    for key in ("entityId", "entity_id"):
        if key in params and digest[0] % 2 == 0:
            params[key], aimed = entity, True
    attr = SEEDED_ATTRS[digest[3] % len(SEEDED_ATTRS)]
    for key in ("attrId", "attr"):
        if aimed and key in params and digest[4] % 3:
            params[key] = attr
            if "instance_id" in params and digest[5] % 2 == 0:
                params["instance_id"] = INSTANCES[(entity, attr)]


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=not os.environ.get("CITYOS_FUZZ_RANDOM"),
)
def test_operation(case: schemathesis.Case, broker: ThreadBroker) -> None:
    _aim(case)
    reads = case.method in ("GET", "HEAD")  # reads write nothing: spare two snapshots
    before = None if reads else broker.state(TENANT)
    started = time.perf_counter()
    response = case.call(base_url=broker.url, timeout=30)
    if os.environ.get("CITYOS_FUZZ_TRACE"):
        with open(os.environ["CITYOS_FUZZ_TRACE"], "a") as trace:
            took = time.perf_counter() - started
            print(
                f"{took:.3f} {case.method} {case.formatted_path} {response.status_code} "
                f"{case.headers} {str(case.body)[:150]}",
                file=trace,
            )
    # No 5xx, except a 501 the operation documents (NGSIv2 registrations: Orion's answer for a
    # feature the broker does not have); 503 and 504 are documented but mean a broken test.
    documented = case.operation.definition.raw["responses"]
    status = response.status_code
    assert status < 500 or (status == 501 and "501" in documented), (
        f"{case.method} {case.formatted_path} answered {status}: {response.text[:300]}"
    )
    case.validate_response(response, checks=CHECKS)
    if before is not None and response.status_code >= 400:
        after = broker.state(TENANT)
        changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
        assert not changed, (
            f"{case.method} {case.formatted_path} answered {response.status_code} but wrote "
            f"{changed}: {response.text[:300]}"
        )
