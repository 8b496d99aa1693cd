"""Saga City open data → NGSI-LD: GSI's designated emergency evacuation sites and shelters.

Pure conversion, no network: reads the two CSVs bundled in ``connectors/data/`` (see its README
for source, licence and GSI's usage notes) and yields ``EvacuationSite`` / ``EvacuationShelter``
entities in key-values form (what the bundled JSON Schemas describe) or normalized form (what a
batch upsert sends). Entities are keyed on 共通ID, never on ``NO`` (a row number of the national
file); every entity carries the GSI attribution in its ``source`` attribute.

    python -m connectors.saga_opendata [--key-values] > entities.json
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ATTRIBUTION",
    "CORE_CONTEXT",
    "EMERGENCY_SITES_CSV",
    "MUNICIPALITY_CODE",
    "SHELTERS_CSV",
    "emergency_site",
    "emergency_sites",
    "model_context",
    "normalized",
    "shelter",
    "shelters",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
EMERGENCY_SITES_CSV = DATA_DIR / "412015_saga-city_designated-emergency-evacuation-sites_gsi.csv"
SHELTERS_CSV = DATA_DIR / "412015_saga-city_designated-shelters_gsi.csv"

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
# GSI's terms require this attribution on every reuse (connectors/data/README.md).
ATTRIBUTION = (
    "出典：国土地理院『指定緊急避難場所データ』『指定避難所データ』（佐賀県佐賀市分）を加工して作成"
)
MUNICIPALITY_CODE = "412015"  # 全国地方公共団体コード of Saga City, with its check digit

# CSV column → key-values attribute, in the GSI column order.
HAZARD_COLUMNS = {
    "洪水": "hazardFlood",
    "崖崩れ、土石流及び地滑り": "hazardLandslide",
    "高潮": "hazardStormSurge",
    "地震": "hazardEarthquake",
    "津波": "hazardTsunami",
    "大規模な火事": "hazardLargeFire",
    "内水氾濫": "hazardInlandFlooding",
    "火山現象": "hazardVolcano",
}
_PREFECTURE = re.compile(r"^(東京都|北海道|京都府|大阪府|.{2,3}県)")
_GEO_ATTRIBUTES = {"location"}


def _flag(row: Mapping[str, str], column: str) -> bool:
    value = row[column].strip()
    if value not in ("", "1"):
        raise ValueError(f"{row['共通ID']}: {column} must be '1' or empty, not {value!r}")
    return value == "1"


def _address(row: Mapping[str, str]) -> dict[str, str]:
    """Split 住所 with the help of 都道府県名及び市町村名 (e.g. 佐賀県佐賀市)."""
    full = row["住所"].strip()
    municipality_full = row["都道府県名及び市町村名"].strip()
    address = {"fullAddress": full, "addressCountry": "JP"}
    prefecture = _PREFECTURE.match(municipality_full)
    if prefecture:
        address["addressRegion"] = prefecture.group(1)
        address["addressLocality"] = municipality_full[prefecture.end() :]
    if municipality_full and full.startswith(municipality_full):
        address["streetAddress"] = full[len(municipality_full) :]
    return address


def _common(row: Mapping[str, str], type_name: str) -> dict[str, Any]:
    common_id = row["共通ID"].strip()
    if common_id[1:6] != MUNICIPALITY_CODE[:5]:
        raise ValueError(f"{common_id}: not a Saga City (41201) id")
    return {
        "id": f"urn:ngsi-ld:{type_name}:{common_id}",
        "type": type_name,
        "name": row["施設・場所名"].strip(),
        "address": _address(row),
        # GeoJSON order is [longitude, latitude]
        "location": {"type": "Point", "coordinates": [float(row["経度"]), float(row["緯度"])]},
        "commonId": common_id,
        "municipalityCode": MUNICIPALITY_CODE,
    }


def _optional(entity: dict[str, Any], row: Mapping[str, str], column: str, name: str) -> None:
    value = row[column].strip()
    if value:  # NGSI-LD has no null: an empty cell is an absent attribute
        entity[name] = value


def emergency_site(row: Mapping[str, str]) -> dict[str, Any]:
    """One row of the emergency-sites CSV as a key-values ``EvacuationSite``."""
    entity = _common(row, "EvacuationSite")
    for column, name in HAZARD_COLUMNS.items():
        entity[name] = _flag(row, column)
    entity["sameAddressAsShelter"] = _flag(row, "指定避難所との住所同一")
    _optional(entity, row, "備考", "remarks")
    entity["source"] = ATTRIBUTION
    return entity


def shelter(row: Mapping[str, str]) -> dict[str, Any]:
    """One row of the shelters CSV as a key-values ``EvacuationShelter``."""
    entity = _common(row, "EvacuationShelter")
    entity["sameAddressAsEmergencySite"] = _flag(row, "指定緊急避難場所との住所同一")
    _optional(entity, row, "受入対象者", "acceptedPersons")
    _optional(entity, row, "その他市町村長が必要と認める事項", "notes")
    _optional(entity, row, "備考", "remarks")
    entity["source"] = ATTRIBUTION
    return entity


def _read(
    path: Path, convert: Callable[[Mapping[str, str]], dict[str, Any]]
) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # GSI's own CSVs carry a BOM
        return [convert(row) for row in csv.DictReader(f)]


def model_context(type_name: str, schemas_dir: Path = SCHEMAS_DIR) -> dict[str, Any]:
    """The bundled ``schemas/<Type>/context.jsonld`` term map, for an inline @context."""
    with (schemas_dir / type_name / "context.jsonld").open(encoding="utf-8") as f:
        context: dict[str, Any] = json.load(f)["@context"]
    return context


def normalized(entity: Mapping[str, Any], context: str | Mapping[str, Any]) -> dict[str, Any]:
    """Key-values → NGSI-LD normalized form with ``@context`` = [model context, core]."""
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for name, value in entity.items():
        if name in ("id", "type", "@context"):
            continue
        kind = "GeoProperty" if name in _GEO_ATTRIBUTES else "Property"
        out[name] = {"type": kind, "value": value}
    out["@context"] = [context, CORE_CONTEXT]
    return out


def emergency_sites(
    path: Path = EMERGENCY_SITES_CSV,
    *,
    key_values: bool = False,
    context: str | Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """All emergency evacuation sites; ``context`` defaults to the bundled model context inline."""
    entities = _read(path, emergency_site)
    if key_values:
        return entities
    ctx = model_context("EvacuationSite") if context is None else context
    return [normalized(e, ctx) for e in entities]


def shelters(
    path: Path = SHELTERS_CSV,
    *,
    key_values: bool = False,
    context: str | Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """All designated shelters; ``context`` defaults to the bundled model context inline."""
    entities = _read(path, shelter)
    if key_values:
        return entities
    ctx = model_context("EvacuationShelter") if context is None else context
    return [normalized(e, ctx) for e in entities]


def _all(key_values: bool) -> Iterator[dict[str, Any]]:
    yield from emergency_sites(key_values=key_values)
    yield from shelters(key_values=key_values)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    json.dump(list(_all("--key-values" in args)), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
