"""``city-os load-sample`` (run as its Python function): bundled schemas, then the 113 Saga City
emergency evacuation sites and 112 shelters as validated entities; idempotent."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from city_os.registry.cli import load_sample, validate_documents
from city_os.registry.validation import load_bundled
from connectors import saga_opendata
from tests.conftest import test_settings as settings_for_tests
from tests.integration.registry.helpers import API, SCHEMAS, Client, eventually, hdr

SITE = "https://city-os.jp/ns/EvacuationSite"
SHELTER = "https://city-os.jp/ns/EvacuationShelter"
FIRST_SITE = "urn:ngsi-ld:EvacuationSite:E4120100001201"
FLOOD = f"{API}/entities/{FIRST_SITE}/attrs/{quote('https://city-os.jp/ns/hazardFlood', safe='')}"


async def _dry_run(client: Client, tenant: str, type_iri: str) -> dict[str, Any]:
    path = f"{SCHEMAS}/{quote(type_iri, safe='')}"
    active = await (await client.get(f"{path}/active", headers=hdr(tenant))).json()
    resp = await client.post(f"{path}/versions/{active['version']}/dryRun", headers=hdr(tenant))
    return await resp.json()  # type: ignore[no-any-return]


async def test_load_sample_twice(client: Client, tenant: str) -> None:
    models = len(load_bundled())
    first = await load_sample(settings_for_tests(), tenant)
    assert first.entities == {"EvacuationSite": 113, "EvacuationShelter": 112}
    assert (first.types, first.new_versions) == (models, models)
    second = await load_sample(settings_for_tests(), tenant)
    assert second.entities == first.entities
    assert second.new_versions == 0  # same content: no new versions

    listed = await (await client.get(SCHEMAS, headers=hdr(tenant))).json()
    assert len(listed) == models and all(t["activeVersion"] == 1 for t in listed)
    for type_iri, count in ((SITE, 113), (SHELTER, 112)):
        report = await _dry_run(client, tenant, type_iri)
        assert (report["checked"], report["invalid"]) == (count, 0), report  # no duplicates

    # The broker process learnt of the schemas loaded elsewhere (NOTIFY): a Smart-Data-Models-
    # style key-values schema now guards NGSI-LD writes to these entities.
    async def refused() -> bool:
        resp = await client.patch(
            FLOOD,
            json={"value": "yes"},
            headers=hdr(tenant),
        )
        if resp.status == 204:  # not yet refreshed: put the valid value back and retry
            await client.patch(
                FLOOD,
                json={"value": True},
                headers=hdr(tenant),
            )
            return False
        body = await resp.json()
        assert resp.status == 400 and body["violations"][0]["pointer"] == "/hazardFlood", body
        return True

    await eventually(refused)


async def test_validate_offline(capsys: Any) -> None:
    documents = saga_opendata.emergency_sites()[:3] + saga_opendata.shelters(key_values=True)[:2]
    assert await validate_documents(documents, None, load_bundled()[0].path.parent) == 0
    broken = {**saga_opendata.shelters(key_values=True)[0], "location": "here"}
    assert (
        await validate_documents([broken], "EvacuationShelter", load_bundled()[0].path.parent) == 1
    )
    out = capsys.readouterr().out
    assert out.count("OK ") == 5 and "INVALID" in out and "/location" in out
