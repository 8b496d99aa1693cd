"""Hand-picked entities and selections with the entities each must select: one table that the
SQL engine (tests/integration/query/test_query_sql.py) and the in-process evaluator
(tests/unit/query/test_evaluate.py) are both held to.

Entities are in the storage format (docs/storage.md) with real Saga City coordinates (GSI
shelter open data); names are expanded with ``expand``.
"""

from __future__ import annotations

import json
from typing import Any

EX = "https://example.org/"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"

S1 = "urn:ngsi-ld:Shelter:kase-elementary"  # 嘉瀬小学校 33.240969,130.257802
S2 = "urn:ngsi-ld:Shelter:kinsen-junior-high"  # 金泉中学校 33.308287,130.314599
ST = "urn:ngsi-ld:Station:saga"  # Saga Station 33.264,130.297
K = "urn:ngsi-ld:District:Kase"
KN = "urn:ngsi-ld:District:Kinsen"
ALL = {S1, S2, ST, K, KN}

KINSEN_SQUARE = [
    [130.30, 33.30],
    [130.33, 33.30],
    [130.33, 33.32],
    [130.30, 33.32],
    [130.30, 33.30],
]


def expand(term: str) -> str:
    return LOCATION if term == "location" else EX + term


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


ENTITIES: list[tuple[str, list[str], list[str] | None, dict[str, Any]]] = [
    (
        S1,
        ["Shelter"],
        ["/Saga/Shelters"],
        {
            "temperature": [
                prop(
                    21.5,
                    observedAt="2026-01-01T10:00:00Z",
                    **{EX + "accuracy": prop(0.1)},
                ),
                prop(30, datasetId="urn:ngsi-ld:Dataset:2"),
            ],
            "name": [prop("Kase Elementary School")],
            "address": [prop({"city": "Saga", "street": "Kase"})],
            "capacity": [prop(200)],
            "tags": [prop(["flood", "earthquake"])],
            "isOpen": [prop(True)],
            "openedAt": [prop({"@type": "DateTime", "@value": "2020-04-01T09:00:00Z"})],
            "refDistrict": [{"type": "Relationship", "object": K}],
            "label": [
                {"type": "LanguageProperty", "languageMap": {"en": "shelter", "ja": "避難所"}}
            ],
            "category": [{"type": "VocabProperty", "vocab": EX + "School"}],
            "location": [{"type": "GeoProperty", "value": point(130.257802, 33.240969)}],
        },
    ),
    (
        S2,
        ["Shelter", "Building"],
        ["/Saga/Shelters/North"],
        {
            "temperature": [prop(18, observedAt="2026-01-02T10:00:00.5Z")],
            "name": [prop("Kinsen Junior High")],
            "address": [prop({"city": "Saga", "street": "Kubo"})],
            "capacity": [prop(500)],
            "tags": [prop(["flood"])],
            "isOpen": [prop(False)],
            "openedAt": [prop({"@type": "DateTime", "@value": "2022-01-01T00:00:00Z"})],
            "refDistrict": [{"type": "Relationship", "object": KN}],
            "label": [{"type": "LanguageProperty", "languageMap": {"en": "school", "ja": "学校"}}],
            "location": [{"type": "GeoProperty", "value": point(130.314599, 33.308287)}],
        },
    ),
    (
        ST,
        ["Station"],
        None,
        {
            "temperature": [prop([10, 40])],
            "name": [prop("Saga Station")],
            "address": [prop({"city": "Tosu"})],
            "capacity": [prop("many")],
            # JST, as Japanese open data writes it: 2024-06-01T00:00:00Z
            "openedAt": [prop({"@type": "DateTime", "@value": "2024-06-01T09:00:00+09:00"})],
            "since": [prop("2024-06-01T09:00:00+09:00")],  # a plain string
            "refDistrict": [{"type": "Relationship", "object": [K, "urn:ngsi-ld:District:X"]}],
            "location": [{"type": "GeoProperty", "value": point(130.297, 33.264)}],
        },
    ),
    (K, ["District"], ["/Other"], {"humidity": [prop(40)], "population": [prop(1000)]}),
    (
        KN,
        ["District"],
        None,
        {
            "humidity": [prop(70)],
            "location": [
                {
                    "type": "GeoProperty",
                    "value": {"type": "Polygon", "coordinates": [KINSEN_SQUARE]},
                }
            ],
        },
    ),
]


Q_CASES: list[tuple[str, set[str]]] = [
    # existence / non-existence
    ("temperature", {S1, S2, ST}),
    ("!temperature", {K, KN}),
    ("temperature.accuracy", {S1}),
    ("address[city]", {S1, S2, ST}),
    ("address[zip]", set()),
    # numbers: any instance, any array element
    ("temperature==30", {S1}),
    ("temperature==21.5", {S1}),
    ("temperature==2.15e1", {S1}),
    ("temperature>25", {S1, ST}),
    ("temperature<15", {ST}),
    ("temperature>=18", {S1, S2, ST}),
    ("temperature<=18", {S2, ST}),
    ("temperature==15..25", {S1, S2}),
    ("temperature!=15..25", {S1, ST}),
    ("temperature!=18", {S1, ST}),
    ("temperature==18,30", {S1, S2}),
    ("temperature!=18,30", {S1, ST}),
    ("capacity>300", {S2}),
    ("capacity!=200", {S2, ST}),  # "many" is of another type: unequal
    ("capacity>-1", {S1, S2}),
    # strings
    ('name=="Saga Station"', {ST}),
    ('name!="Saga Station"', {S1, S2}),
    ('name>"L"', {ST}),
    ('name=="A".."L"', {S1, S2}),
    ('name=="Kinsen Junior High","Saga Station"', {S2, ST}),
    ('tags=="earthquake"', {S1}),
    ('tags=="flood"', {S1, S2}),
    ('tags!="earthquake"', {S2}),
    ('capacity=="many"', {ST}),
    # patterns
    ("name~=School$", {S1}),
    ("name~=^K", {S1, S2}),
    ("name!~=^K", {ST}),
    ('name~="Station|High"', {S2, ST}),
    ("name~=^(Saga|Kinsen) ", {S2, ST}),
    ("name~=(?i)^saga", {ST}),
    ("capacity~=^m", {ST}),
    # booleans
    ("isOpen==true", {S1}),
    ("isOpen==false", {S2}),
    # dates: DateTime values compare on @value, observedAt as timestamps
    ("openedAt>2021-01-01T00:00:00Z", {S2, ST}),
    ("openedAt<2021-01-01T00:00:00Z", {S1}),
    ("openedAt==2020-04-01T09:00:00Z", {S1}),
    ("openedAt==2020-04-01T09:00:00.000Z", {S1}),
    ("openedAt!=2020-04-01T09:00:00Z", {S2, ST}),
    ("openedAt==2020-01-01T00:00:00Z..2021-01-01T00:00:00Z", {S1}),
    # a UTC offset is the instant it names
    ("openedAt==2024-06-01T00:00:00Z", {ST}),
    ("openedAt>2024-05-31T23:59:59Z", {ST}),
    ("openedAt<2024-06-01T00:00:01Z", {S1, S2, ST}),
    ("openedAt==2024-05-31T00:00:00Z..2024-06-01T00:00:00Z", {ST}),
    ("openedAt==2020-04-01", set()),  # a date is not a dateTime
    # a date/time anywhere in a value list compares as an instant (it used to raise an error)
    ("since==5,2024-06-01T00:00:00Z", {ST}),
    ("since!=5,2024-06-01T00:00:00Z", set()),
    ("since==2024-06-01T00:00:00Z", {ST}),
    ("since>2024-05-31T23:00:00Z;since<2024-06-01T00:00:00.5Z", {ST}),
    # the first literal decides where to look: a number looks at value, not at its @value
    ("openedAt==5,2024-06-01T00:00:00Z", set()),
    ("temperature.observedAt>=2026-01-02T00:00:00Z", {S2}),
    ("temperature.observedAt<2026-01-02T00:00:00Z", {S1}),
    ("temperature.observedAt>2026-01-02T10:00:00.4Z", {S2}),
    ("temperature.observedAt>2026-01-02T10:00:00.6Z", set()),
    # sub-property
    ("temperature.accuracy==0.1", {S1}),
    ("temperature.accuracy>1", set()),
    # keys inside the value
    ('address[city]=="Saga"', {S1, S2}),
    ('address[city]=="Tosu"', {ST}),
    ('address[city]!="Saga"', {ST}),
    # relationships: == and != only
    ("refDistrict==urn:ngsi-ld:District:Kase", {S1, ST}),
    ('refDistrict=="urn:ngsi-ld:District:Kinsen"', {S2}),
    ("refDistrict!=urn:ngsi-ld:District:Kase", {S2}),
    ("refDistrict==urn:ngsi-ld:District:Kinsen,urn:ngsi-ld:District:X", {S2, ST}),
    ('refDistrict>"urn"', set()),
    # language maps
    ('label=="避難所"', {S1}),
    ('label[en]=="school"', {S2}),
    ('label[ja]=="school"', set()),
    ('label[*]=="学校"', {S2}),
    ('label[en]!="school"', {S1}),
    # vocab
    ("category==https://example.org/School", {S1}),
    # logic: AND binds tighter than OR
    ("(temperature>25|capacity>300);isOpen==true", {S1}),
    ("temperature>25|capacity>300;isOpen==false", {S1, S2, ST}),
    ("(temperature>25|capacity>300);isOpen==false", {S2}),
    ("((humidity>50|population>500);!temperature)", {K, KN}),
    ("humidity;population", {K}),
    # linked entities
    ("refDistrict{humidity}==40", {S1, ST}),
    ("refDistrict{District:humidity}>50", {S2}),
    ("refDistrict{Station,Shelter:humidity}==40", set()),
    ("refDistrict{population}", {S1, ST}),
    ("!refDistrict{population}", {S2, K, KN}),
]


SAGA_STATION = "[130.297,33.264]"
GEO_CASES: list[tuple[str, str, str, set[str]]] = [
    ("near;maxDistance==3000", "Point", SAGA_STATION, {ST}),
    ("near;maxDistance==5000", "Point", SAGA_STATION, {ST, S1, KN}),
    ("near;minDistance==5000", "Point", SAGA_STATION, {S2}),
    ("near;minDistance==1", "Point", SAGA_STATION, {S1, S2, KN}),
    ("within", "Polygon", json.dumps([KINSEN_SQUARE]), {S2, KN}),
    ("contains", "Point", "[130.31,33.31]", {KN}),
    ("intersects", "Polygon", json.dumps([KINSEN_SQUARE]), {S2, KN}),
    ("disjoint", "Polygon", json.dumps([KINSEN_SQUARE]), {S1, ST}),
    ("equals", "Point", SAGA_STATION, {ST}),
    (
        "overlaps",
        "Polygon",
        "[[[130.32,33.31],[130.34,33.31],[130.34,33.33],[130.32,33.33],[130.32,33.31]]]",
        {KN},
    ),
    ("intersects", "LineString", "[[130.25,33.24],[130.32,33.31]]", {KN}),
    ("within", "MultiPolygon", json.dumps([[KINSEN_SQUARE]]), {S2, KN}),
]


SCOPE_CASES: list[tuple[str, set[str]]] = [
    ("/Saga/Shelters", {S1}),
    ("/Saga/Shelters/#", {S1, S2}),
    ("/Saga/#", {S1, S2}),
    ("/Saga", set()),
    ("/+/Shelters", {S1}),
    ("/+/+/North", {S2}),
    ("/#", {S1, S2, K}),
    ("/Other|/Saga/Shelters", {K, S1}),
    ("/Other,/Saga/Shelters", {K, S1}),
    ("(/Saga/Shelters/#;/+/Shelters/North)", {S2}),
    ("(/Saga/Shelters;/Other)", set()),
]


TYPE_CASES: list[tuple[str, set[str]]] = [
    ("Shelter", {S1, S2}),
    ("Shelter,Station", {S1, S2, ST}),
    ("Shelter|Station", {S1, S2, ST}),
    ("(Shelter;Building)", {S2}),
    ("(Shelter;Building)|District", {S2, K, KN}),
    ("(Shelter;Station)", set()),
    ("Nothing", set()),
]
