"""Every answer of the NGSIv2 face conforms to its OpenAPI declaration: the v2 entity forms,
attributes, values, types, subscriptions, the broker resources, and Orion-style errors."""

from __future__ import annotations

from typing import Any

from tests.integration.conformance import conforms, document
from tests.integration.ngsiv2.support import Client, create_v2, room, v2

E = "/v2/entities/{entityId}"
ATTR = E + "/attrs/{attrName}"


async def _check(
    client: Client, doc: dict[str, Any], method: str, template: str, url: str, status: int,
    **kw: Any,
) -> Any:  # fmt: skip
    resp = await client.request(method, url, **kw)
    assert resp.status == status, (method, url, await resp.text())
    return await conforms(doc, method, template, resp)


async def test_v2_reads_conform(client: Client, service: str) -> None:
    doc = await document(client)
    h = v2(service)
    await create_v2(client, service, room(1))
    await create_v2(client, service, room(2, temperature={"value": 19}))
    for options in ("", "keyValues", "values", "unique", "count"):
        params = {"options": options} if options else {}
        rows = await _check(client, doc, "GET", "/v2/entities", "/v2/entities", 200,
                            params=params, headers=h)  # fmt: skip
        assert len(rows) == 2, options
        await _check(client, doc, "GET", E, "/v2/entities/Room1", 200, params=params, headers=h)
        await _check(client, doc, "GET", E + "/attrs", "/v2/entities/Room1/attrs", 200,
                     params=params, headers=h)  # fmt: skip
    attr = await _check(client, doc, "GET", ATTR, "/v2/entities/Room1/attrs/temperature", 200,
                        headers=h)  # fmt: skip
    assert attr["value"] == 23.5
    for accept, name in (("text/plain", "temperature"), ("application/json", "location")):
        await _check(client, doc, "GET", ATTR + "/value", f"/v2/entities/Room1/attrs/{name}/value",
                     200, headers={**h, "Accept": accept})  # fmt: skip
    query = {"entities": [{"idPattern": ".*", "type": "Room"}], "attrs": ["temperature"]}
    await _check(client, doc, "POST", "/v2/op/query", "/v2/op/query", 200, json=query, headers=h)
    for options in ("", "values", "noAttrDetail,count"):
        await _check(client, doc, "GET", "/v2/types", "/v2/types", 200,
                     params={"options": options} if options else {}, headers=h)  # fmt: skip
    await _check(client, doc, "GET", "/v2/types/{type}", "/v2/types/Room", 200, headers=h)
    await _check(client, doc, "GET", "/v2", "/v2", 200)
    await _check(client, doc, "GET", "/version", "/version", 200)
    await _check(client, doc, "GET", "/statistics", "/statistics", 200)


async def test_v2_writes_and_subscriptions_conform(client: Client, service: str) -> None:
    doc = await document(client)
    h = v2(service)
    await _check(client, doc, "POST", "/v2/entities", "/v2/entities", 201, json=room(1), headers=h)
    await _check(client, doc, "POST", "/v2/entities", "/v2/entities", 204, json=room(1),
                 params={"options": "upsert"}, headers=h)  # fmt: skip
    await _check(client, doc, "PATCH", E + "/attrs", "/v2/entities/Room1/attrs", 204,
                 json={"temperature": {"value": 25}}, headers=h)  # fmt: skip
    await _check(client, doc, "PUT", ATTR + "/value", "/v2/entities/Room1/attrs/level/value",
                 204, data="4", headers={**h, "Content-Type": "text/plain"})  # fmt: skip
    batch = {"actionType": "append", "entities": [room(3)]}
    await _check(client, doc, "POST", "/v2/op/update", "/v2/op/update", 204, json=batch, headers=h)
    sub = {
        "description": "rooms",
        "subject": {"entities": [{"idPattern": ".*", "type": "Room"}],
                    "condition": {"attrs": ["temperature"]}},
        "notification": {"http": {"url": "http://127.0.0.1:9/n"}, "attrsFormat": "keyValues"},
    }  # fmt: skip
    resp = await client.post("/v2/subscriptions", json=sub, headers=h)
    assert resp.status == 201
    await conforms(doc, "POST", "/v2/subscriptions", resp)
    sid = resp.headers["Location"].rsplit("/", 1)[1]
    one = "/v2/subscriptions/{subscriptionId}"
    await _check(client, doc, "GET", "/v2/subscriptions", "/v2/subscriptions", 200, headers=h)
    await _check(client, doc, "GET", one, f"/v2/subscriptions/{sid}", 200, headers=h)
    await _check(client, doc, "PATCH", one, f"/v2/subscriptions/{sid}", 204,
                 json={"status": "inactive"}, headers=h)  # fmt: skip
    await _check(client, doc, "DELETE", one, f"/v2/subscriptions/{sid}", 204, headers=h)


async def test_v2_errors_are_orion_bodies(client: Client, service: str) -> None:
    doc = await document(client)
    h = v2(service)
    await create_v2(client, service, room(1))
    for method, template, url, status, kw in (
        ("GET", E, "/v2/entities/Nope", 404, {}),
        ("GET", "/v2/entities", "/v2/entities", 400, {"params": {"options": "fancy"}}),
        ("POST", "/v2/entities", "/v2/entities", 422, {"json": room(1)}),
        ("POST", E + "/attrs", "/v2/entities/Room1/attrs", 422,
         {"json": {"temperature": {"value": 1}}, "params": {"options": "append"}}),
        ("PUT", "/v2/entities", "/v2/entities", 400, {}),
        ("GET", "/v2/subscriptions/{subscriptionId}", "/v2/subscriptions/abc", 404, {}),
        ("POST", "/v2/op/update", "/v2/op/update", 400, {"json": {"actionType": "x"}}),
    ):  # fmt: skip
        body = await _check(client, doc, method, template, url, status, headers=h, **kw)
        assert set(body) == {"error", "description"}, body
