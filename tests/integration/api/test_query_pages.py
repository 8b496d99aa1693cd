"""Pages of queries that the store picks from an index rather than walking the primary key
(store/postgres/query.py: ``_type_page``, ``_driven_page``; query_page_sql.py): whatever the
path, every match exactly once, in id order across pages, and the count right.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from city_os.store.postgres import query_page_sql

API = "/ngsi-ld/v1"
Client = TestClient  # type: ignore[type-arg]


def _prop(*values: Any) -> list[dict[str, Any]]:
    return [
        {"type": "Property", "value": v, "datasetId": f"urn:ds:{i}"} for i, v in enumerate(values)
    ]


def _driven_population() -> list[dict[str, Any]]:
    """Type A entities with two instances of n and of s ("w" twice), and a few others: of
    type B, of types A and B, with s "v", with n too small."""
    return [
        *(
            {"id": f"urn:x:{i:02d}", "type": "A", "n": _prop(i, i + 1), "s": _prop("w", "w")}
            for i in range(10)
        ),
        {"id": "urn:x:03b", "type": "B", "n": _prop(50), "s": _prop("w")},
        {"id": "urn:x:04b", "type": ["A", "B"], "n": _prop(50), "s": _prop("w")},
        {"id": "urn:x:05b", "type": "A", "n": _prop(50), "s": _prop("v")},
        {"id": "urn:x:06b", "type": "A", "n": _prop(1), "s": _prop("w")},
    ]


async def _create(client: Client, tenant: str, bodies: list[dict[str, Any]]) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    resp = await client.post(f"{API}/entityOperations/create", json=bodies, headers=headers)
    assert resp.status == 201, await resp.text()


async def test_single_type_pages_merge_multi_typed_entities(client: Client, tenant: str) -> None:
    """type=A pages are read along the (types, id) index and merged with the entities that have
    A among several types: every one exactly once, in id order, across pages."""
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    bodies = [
        {"id": "urn:x:1", "type": "A"},
        {"id": "urn:x:2", "type": ["A", "B"]},
        {"id": "urn:x:3", "type": "A", "n": 1, "s": "w"},
        {"id": "urn:x:4", "type": ["B", "A"], "n": 1, "s": "w"},
        {"id": "urn:x:5", "type": "B", "n": 1, "s": "w"},
        {"id": "urn:x:6", "type": "A"},
    ]
    resp = await client.post(f"{API}/entityOperations/create", json=bodies, headers=headers)
    assert resp.status == 201
    seen: list[str] = []
    for offset in (0, 2, 4):
        resp = await client.get(
            f"{API}/entities?type=A&limit=2&offset={offset}", headers={"NGSILD-Tenant": tenant}
        )
        assert resp.status == 200
        seen += [e["id"] for e in await resp.json()]
    assert seen == ["urn:x:1", "urn:x:2", "urn:x:3", "urn:x:4", "urn:x:6"]
    resp = await client.get(f"{API}/entities?type=A&q=n==1", headers={"NGSILD-Tenant": tenant})
    assert [e["id"] for e in await resp.json()] == ["urn:x:3", "urn:x:4"]
    # attr_values probes (a range, a string): kept to type A's rows for the single-typed, not
    # for the multi-typed entities; counts alike.
    for q in ("n>0", 'n>0;s=="w"', 's=="w"'):
        resp = await client.get(
            f"{API}/entities?type=A&count=true&q={q}", headers={"NGSILD-Tenant": tenant}
        )
        assert [e["id"] for e in await resp.json()] == ["urn:x:3", "urn:x:4"], q
        assert resp.headers["NGSILD-Results-Count"] == "2"


@pytest.mark.parametrize("range_first", [1000, 1])
async def test_pages_driven_by_a_string_equality(
    client: Client, tenant: str, monkeypatch: pytest.MonkeyPatch, range_first: int
) -> None:
    """type=A&q=n>k;s=="w": candidates from the type's entities with s "w" (in id order) or,
    when few of the type's numbers lie in the range (RANGE_FIRST), from those sorted by id.
    Either way: each match once (two instances with "w", two numbers in range), in id order
    across pages, with those of several types (merged in apart), none of another type or
    without both values."""
    monkeypatch.setattr(query_page_sql, "RANGE_FIRST", range_first)
    await _create(client, tenant, _driven_population())
    seen: list[str] = []
    for offset in (0, 3, 6):
        resp = await client.get(
            f'{API}/entities?type=A&q=n>5;s=="w"&limit=3&offset={offset}&count=true',
            headers={"NGSILD-Tenant": tenant},
        )
        assert resp.status == 200
        assert resp.headers["NGSILD-Results-Count"] == "6"
        seen += [e["id"] for e in await resp.json()]
    assert seen == ["urn:x:04b", "urn:x:05", "urn:x:06", "urn:x:07", "urn:x:08", "urn:x:09"]
    resp = await client.get(
        f'{API}/entities?type=A&q=s=="w";n>=9', headers={"NGSILD-Tenant": tenant}
    )
    assert [e["id"] for e in await resp.json()] == ["urn:x:04b", "urn:x:08", "urn:x:09"]


@pytest.mark.parametrize("range_first", [1000, 1])
async def test_untyped_pages_driven_by_a_string_equality(
    client: Client, tenant: str, monkeypatch: pytest.MonkeyPatch, range_first: int
) -> None:
    """q=n>k;s=="w" of any type (``_driven_page``): candidates from every entity with n in
    the range (few lie in it: RANGE_FIRST 1000) or with s "w" (RANGE_FIRST 1); each match
    once, in id order across pages, whatever its types. With id=… (the primary key, no driven
    page), the same matches among those ids."""
    monkeypatch.setattr(query_page_sql, "RANGE_FIRST", range_first)
    await _create(client, tenant, _driven_population())
    expected = ["urn:x:03b", "urn:x:04b", "urn:x:05", "urn:x:06", "urn:x:07", "urn:x:08"]
    expected.append("urn:x:09")
    seen: list[str] = []
    for offset in (0, 3, 6, 9):
        resp = await client.get(
            f'{API}/entities?q=n>5;s=="w"&limit=3&offset={offset}&count=true',
            headers={"NGSILD-Tenant": tenant},
        )
        assert resp.status == 200, await resp.text()
        assert resp.headers["NGSILD-Results-Count"] == "7"
        seen += [e["id"] for e in await resp.json()]
    assert seen == expected
    others = {
        's=="w";n>=9': ["urn:x:03b", "urn:x:04b", "urn:x:08", "urn:x:09"],
        's=="v"': ["urn:x:05b"],
        's=="x"': [],
    }
    for q, found in others.items():
        resp = await client.get(f"{API}/entities?q={q}", headers={"NGSILD-Tenant": tenant})
        assert [e["id"] for e in await resp.json()] == found, q
    resp = await client.get(
        f'{API}/entities?type=B,C&q=s=="w"', headers={"NGSILD-Tenant": tenant}
    )  # several types: driven too, the type condition checked per candidate
    assert [e["id"] for e in await resp.json()] == ["urn:x:03b", "urn:x:04b"]
    listed = ",".join(f"urn:x:0{i}" for i in (3, 5, 6))
    resp = await client.get(
        f'{API}/entities?id={listed},urn:x:03b&q=n>5;s=="w"', headers={"NGSILD-Tenant": tenant}
    )
    assert [e["id"] for e in await resp.json()] == ["urn:x:03b", "urn:x:05", "urn:x:06"]
