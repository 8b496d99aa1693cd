"""``make demo-federation``: Saga Prefecture's broker as one data space over its cities (広域連携).

Starts four city-os instances on this machine — Saga Prefecture (1041), Saga City (1042),
Ogi City (1043) and Kanzaki City (1044), each with its own PostgreSQL database — loads into each
city its own real GSI designated emergency evacuation sites and shelters
(../shared/opendata, attribution below), registers the three cities at the prefecture as
inclusive context sources (with the bounding box of their data as ``location``), and prints
prefecture-level queries whose answers come from several cities. Everything goes over real
HTTP: the script only talks to the prefecture once the data is loaded.

出典：国土地理院『指定緊急避難場所データ』『指定避難所データ』（佐賀県佐賀市・小城市・神埼市分）を加工して作成
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
OPENDATA = Path(os.environ.get("CITYOS_DEMO_OPENDATA", ROOT.parent / "shared" / "opendata"))
PG = os.environ.get("CITYOS_DEMO_PG", "postgresql://postgres@127.0.0.1:5432")
API = "/ngsi-ld/v1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
HAZARDS = {
    "洪水": "hazardFlood",
    "崖崩れ、土石流及び地滑り": "hazardLandslide",
    "高潮": "hazardStormSurge",
    "地震": "hazardEarthquake",
    "津波": "hazardTsunami",
    "大規模な火事": "hazardLargeFire",
    "内水氾濫": "hazardInlandFlooding",
    "火山現象": "hazardVolcano",
}
# A point on the Saga City – Ogi City border (near the Kase river, 嘉瀬川).
BORDER = (130.2445, 33.2700)


@dataclass
class City:
    name: str
    label: str
    code: str  # 全国地方公共団体コード with check digit
    slug: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def attribution(self) -> str:
        data = "『指定緊急避難場所データ』『指定避難所データ』"
        return f"出典：国土地理院{data}（佐賀県{self.label}分）を加工して作成"


PREFECTURE = City("pref", "佐賀県", "410004", "", 1041)
CITIES = [
    City("saga", "佐賀市", "412015", "saga-city", 1042),
    City("ogi", "小城市", "412082", "ogi-city", 1043),
    City("kanzaki", "神埼市", "412104", "kanzaki-city", 1044),
]


def _model_context() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for kind in ("EvacuationSite", "EvacuationShelter"):
        with (ROOT / "schemas" / kind / "context.jsonld").open(encoding="utf-8") as f:
            merged.update(json.load(f)["@context"])
    return merged


def _entities(city: City) -> list[dict[str, Any]]:
    """The city's sites and shelters as normalized NGSI-LD (terms of the model context)."""
    out = []
    for kind, suffix in (
        ("EvacuationSite", "designated-emergency-evacuation-sites"),
        ("EvacuationShelter", "designated-shelters"),
    ):
        path = OPENDATA / f"{city.code}_{city.slug}_{suffix}_gsi.csv"
        with path.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                attrs: dict[str, Any] = {
                    "name": row["施設・場所名"].strip(),
                    "address": {"fullAddress": row["住所"].strip(), "addressCountry": "JP",
                                "addressLocality": city.label},
                    "commonId": row["共通ID"].strip(),
                    "municipalityCode": city.code,
                    "source": city.attribution,
                }  # fmt: skip
                if kind == "EvacuationSite":
                    attrs.update({n: row[c].strip() == "1" for c, n in HAZARDS.items()})
                entity: dict[str, Any] = {
                    "id": f"urn:ngsi-ld:{kind}:{row['共通ID'].strip()}",
                    "type": kind,
                    "location": {
                        "type": "GeoProperty",
                        "value": {
                            "type": "Point",
                            "coordinates": [float(row["経度"]), float(row["緯度"])],
                        },
                    },
                }
                entity.update({k: {"type": "Property", "value": v} for k, v in attrs.items()})
                out.append(entity)
    return out


def _bbox(entities: list[dict[str, Any]]) -> dict[str, Any]:
    points = [e["location"]["value"]["coordinates"] for e in entities]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _distance_km(a: list[float], b: tuple[float, float]) -> float:
    lat1, lat2 = math.radians(a[1]), math.radians(b[1])
    dlat, dlon = lat2 - lat1, math.radians(b[0] - a[0])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(h))


def _database(city: City) -> str:
    name = f"cityos_fedops_demo_{city.name}"
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name],
                   check=True)  # fmt: skip
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
    return f"{PG}/{name}"


def _start(city: City, logs: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CITYOS_PORT": str(city.port),
        "CITYOS_DATABASE_URL": _database(city),
        "CITYOS_OUTBOUND_ALLOW": "loopback",  # the other instances live on this machine
        "CITYOS_KAFKA_BOOTSTRAP": "",
        "CITYOS_NOTIFIER_ENABLED": "false",
        "CITYOS_DB_POOL_MAX": "4",
        "CITYOS_LOG_LEVEL": "WARNING",
    }
    log = (logs / f"demo-{city.name}.log").open("wb")
    return subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "city-os"), "serve"], env=env, stdout=log, stderr=log
    )


async def _ready(http: aiohttp.ClientSession, city: City, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{city.url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)  # a script polling a starting process, not a test
    raise SystemExit(f"{city.label} on {city.url} did not start (see .run/demo-{city.name}.log)")


async def _post(http: aiohttp.ClientSession, url: str, body: Any, **headers: str) -> Any:
    async with http.post(url, json=body, headers=headers) as resp:
        text = await resp.text()
        if resp.status >= 300:
            raise SystemExit(f"POST {url}: {resp.status} {text[:300]}")
        return resp


async def _query(
    http: aiohttp.ClientSession, link: str, **params: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    async with http.get(
        f"{PREFECTURE.url}{API}/entities",
        params=params,
        headers={"Link": link, "Accept": "application/json"},
    ) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            raise SystemExit(f"query {params}: {resp.status} {body}")
        return body, dict(resp.headers)


async def demo() -> None:
    logs = ROOT / ".run"
    logs.mkdir(exist_ok=True)
    processes = [_start(c, logs) for c in (PREFECTURE, *CITIES)]
    context = _model_context()
    try:
        async with aiohttp.ClientSession() as http:
            for city in (PREFECTURE, *CITIES):
                await _ready(http, city)
            print("four city-os instances: " + ", ".join(
                f"{c.label} {c.url}" for c in (PREFECTURE, *CITIES)))  # fmt: skip
            # the model @context, hosted by the prefecture (sources fetch it by URL)
            resp = await _post(http, f"{PREFECTURE.url}{API}/jsonldContexts", {"@context": context})
            hosted = PREFECTURE.url + resp.headers["Location"]
            link = f'<{hosted}>; rel="http://www.w3.org/ns/json-ld#context"'
            for city in CITIES:
                entities = _entities(city)
                body = [{**e, "@context": [hosted, CORE]} for e in entities]
                await _post(http, f"{city.url}{API}/entityOperations/upsert", body,
                            **{"Content-Type": "application/ld+json"})  # fmt: skip
                registration = {
                    "type": "ContextSourceRegistration",
                    "registrationName": f"{city.label} evacuation sites and shelters",
                    "information": [{"entities": [{"type": "EvacuationSite"},
                                                  {"type": "EvacuationShelter"}]}],
                    "endpoint": city.url,
                    "location": _bbox(entities),
                    "mode": "inclusive",
                    "management": {"timeout": 3000},
                    "@context": [hosted, CORE],
                }  # fmt: skip
                await _post(http, f"{PREFECTURE.url}{API}/csourceRegistrations", registration,
                            **{"Content-Type": "application/ld+json"})  # fmt: skip
                print(f"  {city.label}: {len(entities)} sites and shelters loaded, "
                      f"registered at {PREFECTURE.label}")  # fmt: skip
            await _print_queries(http, link)
            print("\n" + "\n".join(c.attribution for c in CITIES))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def _print_queries(http: aiohttp.ClientSession, link: str) -> None:
    print(f"\n1. {PREFECTURE.label}: every designated shelter (指定避難所), by city")
    for kind in ("EvacuationShelter", "EvacuationSite"):
        _, headers = await _query(http, link, type=kind, count="true", limit="0")
        body, _ = await _query(http, link, type=kind, limit="1000", attrs="address")
        by_city: dict[str, int] = {}
        for entity in body:
            city = entity["address"]["value"].get("addressLocality", "?")
            by_city[city] = by_city.get(city, 0) + 1
        print(f"   {kind}: {headers.get('NGSILD-Results-Count')} in all — " + ", ".join(
            f"{c} {n}" for c, n in sorted(by_city.items())))  # fmt: skip
    lon, lat = BORDER
    print(f"\n2. Flood-safe emergency sites (洪水 designated) within 5 km of the Saga–Ogi "
          f"border point {lat:.4f}N {lon:.4f}E, nearest first")  # fmt: skip
    body, headers = await _query(
        http, link, type="EvacuationSite", q="hazardFlood==true",
        georel="near;maxDistance==5000", geometry="Point", coordinates=json.dumps([lon, lat]),
        limit="100",
    )  # fmt: skip
    rows = sorted((_distance_km(e["location"]["value"]["coordinates"], BORDER), e) for e in body)
    for km, entity in rows[:15]:
        city = entity["address"]["value"]["addressLocality"]
        print(f"   {km:4.1f} km  {city}  {entity['name']['value']}")
    cities = sorted({e["address"]["value"]["addressLocality"] for _, e in rows})
    print(f"   … {len(rows)} sites from {len(cities)} cities: {', '.join(cities)}")
    if "NGSILD-Warning" in headers:
        print(f"   sources missing: {headers['NGSILD-Warning']}")
    print("\n3. Shelters within 2 km of JR Kanzaki station (神埼駅), asked at the prefecture")
    body, _ = await _query(
        http, link, type="EvacuationShelter", georel="near;maxDistance==2000",
        geometry="Point", coordinates="[130.3733,33.3108]", limit="20",
    )  # fmt: skip
    for entity in body[:8]:
        print(f"   {entity['address']['value']['addressLocality']}  {entity['name']['value']}")
    print(f"   … {len(body)} shelters")


if __name__ == "__main__":
    if not OPENDATA.is_dir():
        sys.exit(f"open data not found at {OPENDATA} (set CITYOS_DEMO_OPENDATA)")
    asyncio.run(demo())
