"""Hostile input, class by class (issue 16, items 2-3): every refusal is a 4xx ProblemDetails
naming the problem, answered in bounded time, and leaves the tenant's entities and outbox rows
exactly as they were. Inputs are generated (hypothesis) within each class.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.integration.robustness.support import API, check_problem, snapshot

Client = TestClient  # type: ignore[type-arg]
EID = "urn:ngsi-ld:Probe:1"
BASE = {"id": EID, "type": "Probe", "p": {"type": "Property", "value": 1}}
BOUND = 5.0  # seconds: each refusal is answered well within this
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _hdr(tenant: str, media: str = "application/json") -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": media}


async def _seed(client: Client, tenant: str) -> None:
    resp = await client.post(f"{API}/entities", json=BASE, headers=_hdr(tenant))
    assert resp.status in (201, 409), await resp.text()


async def _refused(
    client: Client,
    tenant: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    status: int = 400,
    kind: str | None = "BadRequestData",
    media: str = "application/json",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send; the answer must be the refusal, in bounded time, and nothing may have changed."""
    before = await snapshot(tenant)
    data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    started = time.monotonic()
    resp = await client.request(
        method, path, data=data, headers={**_hdr(tenant, media), **(headers or {})}
    )
    problem = await resp.json(content_type=None)
    assert time.monotonic() - started < BOUND
    if resp.status == 207 and "/entityOperations/" in path:  # a batch refuses per entry
        assert problem["success"] == [] and len(problem["errors"]) == 1, problem
        problem = problem["errors"][0]["error"]
        resp_status = problem["status"]
    else:
        resp_status = resp.status
    check_problem(resp_status, problem, status, kind)
    assert await snapshot(tenant) == before
    return problem


# -- U+0000 in every kind of string --------------------------------------------------------


def _with_nul(text: str, at: int) -> str:
    at = at % (len(text) + 1)
    return text[:at] + "\x00" + text[at:]


NUL_PLACES = {
    "value": lambda s: {**BASE, "p": {"type": "Property", "value": s}},
    "nested value": lambda s: {**BASE, "p": {"type": "Property", "value": {"a": [s]}}},
    "attribute name": lambda s: {**BASE, "p" + s: 1},
    "languageMap": lambda s: {**BASE, "p": {"type": "LanguageProperty", "languageMap": {"ja": s}}},
    "unitCode": lambda s: {**BASE, "p": {"type": "Property", "value": 1, "unitCode": s}},
    "object": lambda s: {**BASE, "p": {"type": "Relationship", "object": "urn:a:" + s}},
    "datasetId": lambda s: {
        **BASE,
        "p": {"type": "Property", "value": 1, "datasetId": "urn:d:" + s},
    },
    "scope": lambda s: {**BASE, "scope": "/a" + s},
    "sub-attribute": lambda s: {
        **BASE,
        "p": {"type": "Property", "value": 1, "q": {"type": "Property", "value": s}},
    },
    "type": lambda s: {**BASE, "type": "Probe" + s},
}


@SETTINGS
@given(
    place=st.sampled_from(sorted(NUL_PLACES)),
    text=st.text(max_size=20),
    at=st.integers(0, 40),
    op=st.sampled_from(["create", "upsert", "append", "replace"]),
)
async def test_nul_anywhere_in_a_body_is_refused(
    client: Client, tenant: str, place: str, text: str, at: int, op: str
) -> None:
    await _seed(client, tenant)
    entity = NUL_PLACES[place](_with_nul(text, at))
    path, body = {
        "create": (f"{API}/entities", {**entity, "id": "urn:ngsi-ld:Probe:new"}),
        "upsert": (f"{API}/entityOperations/upsert", [BASE, entity]),
        "append": (f"{API}/entities/{EID}/attrs", {k: v for k, v in entity.items() if k != "id"}),
        "replace": (f"{API}/entities/{EID}", entity),
    }[op]
    method = "PUT" if op == "replace" else "POST"
    problem = await _refused(client, tenant, method, path, body)
    assert "U+0000" in problem["detail"]


@SETTINGS
@given(
    where=st.sampled_from(["entity id", "attribute", "q", "idPattern", "type"]),
    text=st.text(max_size=10),
)
async def test_nul_in_the_url_is_refused(
    client: Client, tenant: str, where: str, text: str
) -> None:
    await _seed(client, tenant)
    bad = quote(_with_nul(text, 3), safe="")
    path = {
        "entity id": f"{API}/entities/urn:a:{bad}",
        "attribute": f"{API}/entities/{EID}/attrs/p{bad}",
        "q": f"{API}/entities?type=Probe&q=p=={bad}",
        "idPattern": f"{API}/entities?type=Probe&idPattern={bad}",
        "type": f"{API}/entities?type=Probe{bad}",
    }[where]
    method = "DELETE" if where == "attribute" else "GET"
    problem = await _refused(client, tenant, method, path)
    assert "U+0000" in problem["detail"]


# -- nesting -------------------------------------------------------------------------------


DEEP = "__deep__"


def _deep(depth: int, leaf: bytes = b"1") -> bytes:
    """JSON text nested ``depth`` levels (objects and arrays in turn), written directly:
    orjson itself refuses to serialise more than 254 levels."""
    opening = b"".join(b"[" if i % 2 else b'{"k":' for i in range(depth))
    closing = b"".join(b"]" if i % 2 else b"}" for i in reversed(range(depth)))
    return opening + leaf + closing


def _embed(body: Any, deep: bytes) -> bytes:
    return orjson.dumps(body).replace(orjson.dumps(DEEP), deep)


def _sub_chain(depth: int) -> bytes:
    """An attribute whose sub-attributes nest so that the body ``{"p": …}`` is exactly
    ``depth`` levels deep: the outer object, ``depth - 2`` sub-attribute levels and the leaf."""
    levels = depth - 2
    return (
        b'{"type":"Property","value":1,"s":' * levels
        + b'{"type":"Property","value":1}'
        + b"}" * levels
    )


# CITYOS_MAX_JSON_DEPTH bounds the body as sent (documented so in README): it is checked on
# the raw JSON before any work, not on an expanded or stored form. Every case below builds a
# body nested exactly ``depth`` levels deep or more, so ``depth`` > 32 must always be refused.
@SETTINGS
@given(
    depth=st.integers(33, 1000),
    place=st.sampled_from(
        ["value", "sub-attributes", "@context", "batch upsert", "batch delete", "schema"]
    ),
)
@example(depth=600, place="batch upsert")  # the 600-deep value next to a new entity
@example(depth=33, place="sub-attributes")  # just over the limit: the case the old test missed
@example(depth=33, place="value")
async def test_deep_nesting_is_refused_before_any_work(
    client: Client, tenant: str, depth: int, place: str
) -> None:
    await _seed(client, tenant)
    ld = "application/ld+json"
    method, path, body, media = {
        "value": ("POST", f"{API}/entities/{EID}/attrs", {"p": DEEP}, None),
        "sub-attributes": ("POST", f"{API}/entities/{EID}/attrs", {"p": DEEP}, _sub_chain(depth)),
        "@context": ("POST", f"{API}/entities", {"id": "urn:a:2", "type": "T", "@context": [DEEP]},
                     ld),
        "batch upsert": ("POST", f"{API}/entityOperations/upsert",
                         [{**BASE, "id": "urn:ngsi-ld:Probe:new"}, {**BASE, "p": DEEP}], None),
        "batch delete": ("POST", f"{API}/entityOperations/delete", [DEEP], None),
        "schema": ("POST", "/cityos/v1/schemas", {"type": "Probe", "schema": DEEP},
                   _deep(depth, b'{"type":"object"}')),
    }[place]  # fmt: skip
    deep = media if isinstance(media, bytes) else _deep(depth)
    media = media if isinstance(media, str) else "application/json"
    body = _embed(body, deep)
    problem = await _refused(client, tenant, method, path, body, media=media)
    assert problem["limit"] == "CITYOS_MAX_JSON_DEPTH", problem
    assert problem["maximum"] == 32, problem


@pytest.mark.parametrize("place", ["value", "sub-attributes"])
async def test_nesting_at_the_depth_limit_is_stored_and_reads_back(
    client: Client, tenant: str, place: str
) -> None:
    """The boundary of the refusal above: a body exactly 32 levels deep is accepted, stored and
    rendered back in every representation (the stored and expanded forms are deeper than the
    body: nothing downstream may fail on them)."""
    await _seed(client, tenant)
    deep = _sub_chain(32) if place == "sub-attributes" else _deep(31)
    body = _embed({"p": DEEP}, deep)
    resp = await client.post(f"{API}/entities/{EID}/attrs", data=body, headers=_hdr(tenant))
    assert resp.status == 204, await resp.text()
    expected = orjson.loads(deep)
    for options in ("", "?options=concise", "?options=keyValues"):
        resp = await client.get(f"{API}/entities/{EID}{options}", headers={"NGSILD-Tenant": tenant})
        assert resp.status == 200, await resp.text()
        got = (await resp.json())["p"]
        if options == "?options=keyValues":
            want = expected["value"] if place == "sub-attributes" else expected
            assert got == want
        elif place == "sub-attributes":
            assert got["s"]["value"] == 1
        else:
            assert got["value"] == expected if options == "" else got == expected


async def test_too_many_containers_is_413(client: Client, tenant: str) -> None:
    body = b"[" + b",".join([b"[]"] * 120_001) + b"]"
    problem = await _refused(
        client, tenant, "POST", f"{API}/entityOperations/upsert", body, status=413, kind=None
    )
    assert problem["limit"] == "CITYOS_MAX_JSON_CONTAINERS"


# -- time-zone offsets and years -----------------------------------------------------------


@SETTINGS
@given(
    hours=st.integers(16, 23),
    minutes=st.integers(0, 59),
    sign=st.sampled_from("+-"),
    colon=st.booleans(),
    member=st.sampled_from(["expiresAt", "DateTime value", "attribute expiresAt"]),
)
async def test_offsets_postgresql_cannot_hold_are_refused(
    client: Client, tenant: str, hours: int, minutes: int, sign: str, colon: bool, member: str
) -> None:
    await _seed(client, tenant)
    offset = f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"
    stamp = f"2030-01-01T00:00:00{offset}"
    attrs: dict[str, Any] = {
        "expiresAt": {"expiresAt": stamp},
        "DateTime value": {
            "p": {"type": "Property", "value": {"@type": "DateTime", "@value": stamp}}
        },
        "attribute expiresAt": {"p": {"type": "Property", "value": 1, "expiresAt": stamp}},
    }[member]  # fmt: skip
    await _refused(client, tenant, "POST", f"{API}/entityOperations/upsert", [{**BASE, **attrs}])


@SETTINGS
@given(stamp=st.sampled_from(["9999-12-31T23:00:00-10:00", "0001-01-01T00:00:00+01:00"]))
async def test_years_beyond_python_in_utc_are_refused(
    client: Client, tenant: str, stamp: str
) -> None:
    await _seed(client, tenant)
    await _refused(client, tenant, "PATCH", f"{API}/entities/{EID}", {"expiresAt": stamp},
                   media="application/merge-patch+json")  # fmt: skip


# -- integers ------------------------------------------------------------------------------

NON_ASCII_DIGIT = st.characters(whitelist_categories=["Nd"]).filter(lambda c: not c.isascii())
NUMBERS = st.one_of(
    st.builds(lambda c, n: c * n, NON_ASCII_DIGIT, st.integers(1, 3)),
    st.sampled_from(["²", "³", "¹"]),
    st.integers(2**31, 10**40).map(str),
    st.integers(5000, 6000).map(lambda n: "9" * n),
)


@SETTINGS
@given(
    raw=NUMBERS,
    param=st.sampled_from(["limit", "offset", "joinLevel", "examples", "version"]),
)
async def test_integer_parameters_take_ascii_digits_in_range(
    client: Client, tenant: str, raw: str, param: str
) -> None:
    await _seed(client, tenant)
    value = quote(raw, safe="")
    path = {
        "limit": f"{API}/entities?type=Probe&limit={value}",
        "offset": f"{API}/entities?type=Probe&offset={value}",
        "joinLevel": f"{API}/entities?type=Probe&join=inline&joinLevel={value}",
        "examples": f"/cityos/v1/schemas/Probe/versions/1/dryRun?examples={value}",
        "version": f"/cityos/v1/schemas/Probe/versions/{value}",
    }[param]
    method = "POST" if param == "examples" else "GET"
    problem = await _refused(client, tenant, method, path)
    assert "integer" in problem["detail"]


@SETTINGS
@given(version=st.sampled_from([b"1000000000000000000000000000000", b"1099511627776", b"-1", b"0"]))
async def test_schema_version_in_a_body_is_range_checked(
    client: Client, tenant: str, version: bytes
) -> None:
    body = b'{"version": ' + version + b"}"
    await _refused(client, tenant, "PUT", "/cityos/v1/schemas/Probe/active", body)


# -- counts and lengths --------------------------------------------------------------------


@SETTINGS
@given(
    case=st.sampled_from(
        ["orderBy", "selectors", "types", "attributes", "sub-attributes", "id", "name"]
    ),
    extra=st.integers(1, 3000),
)
async def test_counts_and_lengths_are_limited(
    client: Client, tenant: str, case: str, extra: int
) -> None:
    await _seed(client, tenant)
    many_attrs = {f"a{i}": i for i in range(1001 + extra)}
    subs = {f"s{i}": {"type": "Property", "value": i} for i in range(1000 + extra)}
    method, path, body, limit = {
        "orderBy": ("GET", f"{API}/entities?type=Probe&orderBy=" + ",".join(["p"] * (16 + extra)),
                    None, "CITYOS_MAX_ORDER_BY_KEYS"),
        "selectors": ("POST", f"{API}/entityOperations/query",
                      {"type": "Query", "entities": [{"type": "Probe"}] * (100 + extra)},
                      "CITYOS_MAX_QUERY_SELECTORS"),
        "types": ("POST", f"{API}/entityOperations/upsert",
                  [{**BASE, "type": [f"T{i}" for i in range(32 + extra)]}], None),
        "attributes": ("POST", f"{API}/entityOperations/upsert", [{**BASE, **many_attrs}], None),
        "sub-attributes": ("POST", f"{API}/entities/{EID}/attrs",
                           {"p": {"type": "Property", "value": 1, **subs}}, None),
        "id": ("POST", f"{API}/entities",
               {**BASE, "id": "urn:a:" + "é" * (512 + extra % 1000)}, "CITYOS_MAX_ID_BYTES"),
        "name": ("POST", f"{API}/entities/{EID}/attrs",
                 {"urn:a:" + "名" * (171 + extra % 1500): 1}, "CITYOS_MAX_NAME_BYTES"),
    }[case]  # fmt: skip
    problem = await _refused(client, tenant, method, path, body)
    if limit is not None:
        assert problem["limit"] == limit, problem
    else:
        assert "limit" in problem, problem


async def test_lone_surrogates_are_refused_as_invalid_json(client: Client, tenant: str) -> None:
    body = b'{"id": "urn:ngsi-ld:Probe:s", "type": "Probe", "p": "\\ud800"}'
    await _refused(client, tenant, "POST", f"{API}/entities", body, kind="InvalidRequest")
