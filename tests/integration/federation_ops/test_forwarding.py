"""Writes forwarded to context sources by mode and operation (federation/forward*.py).

Real city-os instances: the prefecture forwards to Saga City's broker; what arrived is read
back from Saga City itself (local=true), what stayed is read from the prefecture (local=true).
"""

from __future__ import annotations

from typing import Any

from tests.integration.federation_ops.support import API, CONTEXT, Broker, brokers, shelter

ID = "urn:ngsi-ld:Shelter:"
LD = {"Content-Type": "application/ld+json"}


async def _local(broker: Broker, entity_id: str) -> tuple[int, Any]:
    async with broker.http.get(
        f"{broker.url}{API}/entities/{entity_id}",
        params={"local": "true"},
        headers=broker.headers(Link=broker.link(), Accept="application/json"),
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def _write(
    broker: Broker, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any]:
    async with broker.http.request(
        method,
        f"{broker.url}{API}{path}",
        params=params,
        json=body,
        headers=broker.headers(**(LD if body is not None else {"Link": broker.link()})),
    ) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None)) if text else None


def _ld(body: Any) -> Any:
    if isinstance(body, list):
        return [{**b, "@context": CONTEXT} for b in body]
    return {**body, "@context": CONTEXT}


async def test_exclusive_create_update_delete_split_by_attribute() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        exclusive = [
            {"entities": [{"id": ID + "x", "type": "Shelter"}], "propertyNames": ["capacity"]}
        ]
        await pref.register(
            saga, mode="exclusive", information=exclusive, operations=["redirectionOps"]
        )
        status, _ = await _write(
            pref, "POST", "/entities", _ld(shelter(ID + "x", capacity=10, name="hall"))
        )
        assert status == 201
        status, here = await _local(pref, ID + "x")
        assert status == 200 and "capacity" not in here and here["name"]["value"] == "hall"
        status, there = await _local(saga, ID + "x")
        assert status == 200 and there["capacity"]["value"] == 10 and "name" not in there

        status, _ = await _write(
            pref,
            "PATCH",
            f"/entities/{ID}x/attrs",
            _ld({"capacity": {"type": "Property", "value": 12}}),
        )
        assert status == 204
        assert (await _local(saga, ID + "x"))[1]["capacity"]["value"] == 12

        status, _ = await _write(pref, "DELETE", f"/entities/{ID}x")
        assert status == 204
        assert (await _local(saga, ID + "x"))[0] == 404
        assert (await _local(pref, ID + "x"))[0] == 404


async def test_inclusive_write_is_kept_here_and_sent_there() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.register(saga, operations=["createEntity", "updateOps", "deleteEntity"])
        status, _ = await _write(pref, "POST", "/entities", _ld(shelter(ID + "i", capacity=5)))
        assert status == 201
        assert (await _local(pref, ID + "i"))[1]["capacity"]["value"] == 5
        assert (await _local(saga, ID + "i"))[1]["capacity"]["value"] == 5


async def test_redirect_without_the_operation_is_a_conflict() -> None:
    async with brokers("pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.register(
            saga,
            mode="redirect",
            information=[{"entities": [{"id": ID + "r", "type": "Shelter"}]}],
            operations=["retrieveOps"],
        )
        status, problem = await _write(
            pref, "POST", "/entities", _ld(shelter(ID + "r", capacity=1))
        )
        assert status == 409 and problem["type"].endswith("/Conflict")
        assert (await _local(pref, ID + "r"))[0] == 404


async def test_batch_split_per_source_and_207_names_the_failing_one() -> None:
    async with brokers("pref", "saga", "ogi") as b:
        pref, saga, ogi = b["pref"], b["saga"], b["ogi"]
        ops = ["createBatch", "createEntity"]
        await pref.register(
            saga,
            information=[{"entities": [{"idPattern": ".*saga.*", "type": "Shelter"}]}],
            operations=ops,
        )
        dead = Broker("dead", "http://127.0.0.1:9", ogi.tenant, ogi.http)
        failing = await pref.register(
            dead,
            information=[{"entities": [{"idPattern": ".*ogi.*", "type": "Shelter"}]}],
            operations=ops,
        )
        batch = [
            shelter(ID + "saga-1", capacity=1),
            shelter(ID + "ogi-1", capacity=2),
            shelter(ID + "pref-1", capacity=3),
        ]
        status, result = await _write(pref, "POST", "/entityOperations/create", _ld(batch))
        assert status == 207, result
        assert sorted(result["success"]) == [ID + "pref-1", ID + "saga-1"]
        [error] = result["errors"]
        assert error["entityId"] == ID + "ogi-1" and failing in error["error"]["detail"]
        assert (await _local(saga, ID + "saga-1"))[0] == 200
        assert (await _local(saga, ID + "pref-1"))[0] == 404  # only its own part went there
