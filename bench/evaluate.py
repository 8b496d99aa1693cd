"""In-process selection evaluation (issue #9, the notifier): time per entity of ``matches``.

Layer: bench/. No server: the bench's AirQualityObserved (``workload.entity_json``, 8
attributes) is parsed with the core @context into the stored form, as a change event carries
it; each selection a subscription might hold is compiled once (``compile_selection``), then
``matches`` is called on the entity in a tight loop, best of five runs. Two ceilings are
measured in the same run with the same loop: an empty function call (what calling anything
costs) and a hand-written check of ``temperature > 20`` on the stored form (the least a real
test does). Target: microseconds per evaluation, so that a notifier can test an event against
hundreds of subscriptions in well under a millisecond.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from bench.workload import entity_id, entity_json
from city_os.core.contexts import bundled_documents
from city_os.ngsild.attributes import parse_entity
from city_os.ngsild.entity import expand_attr_name, now_iso
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.ngsild.representation import EntityRecord

CALLS = 20_000
ROUNDS = 5
TARGET_US = 10.0  # per evaluation, for every selection below


@dataclass
class Timing:
    label: str
    us: float  # per call, best round
    matched: bool


def _entity(terms: TermMap) -> EntityRecord:
    eid = entity_id("evaluate-", 1)
    body = orjson.loads(entity_json(eid))
    body["scope"] = "/Saga/Air"
    parsed = parse_entity(body, terms, now_iso())
    now = now_iso()
    # What the notifier gets: the stored form after a JSON round trip (the change event).
    attrs = orjson.loads(orjson.dumps(parsed.attrs))
    return EntityRecord(parsed.id, parsed.types, attrs, parsed.scopes, now, now)


def _selections(entity: EntityRecord) -> list[tuple[str, Selection]]:
    kind = parse_type_selection("AirQualityObserved")
    typed = (EntitySelector(types=kind),)
    near = parse_geoq("near;maxDistance==2000", "Point", "[130.30,33.26]", None)
    within = parse_geoq(
        "within", "Polygon", "[[[130.1,33.1],[130.5,33.1],[130.5,33.4],[130.1,33.4],[130.1,33.1]]]"
    )
    return [
        ("type=AirQualityObserved", Selection(selectors=typed)),
        (
            "idPattern ^urn:ngsi-ld:AirQualityObserved:",
            Selection(selectors=(EntitySelector(id_pattern="^urn:ngsi-ld:AirQualityObserved:"),)),
        ),
        ("q=temperature>20", Selection(selectors=typed, q=parse_q("temperature>20"))),
        ("q=temperature==15..25", Selection(q=parse_q("temperature==15..25"))),
        ('q=name=="Saga Ekimae station"', Selection(q=parse_q('name=="Saga Ekimae station"'))),
        (
            "q=dateObserved>2024-01-01T00:00:00Z",
            Selection(q=parse_q("dateObserved>2024-01-01T00:00:00Z")),
        ),
        ("q=name~=(?i)ekimae (RE2)", Selection(q=parse_q("name~=(?i)ekimae"))),
        ("q=a>1;b<5|c (3 terms)", Selection(q=parse_q("temperature>1;relativeHumidity<5|pm25"))),
        ("geoQ near;maxDistance==2000", Selection(geo=near)),
        ("geoQ within a polygon", Selection(geo=within)),
        ("scopeQ=/Saga/#", Selection(scope=parse_scopeq("/Saga/#"))),
        (
            "type + q + geoQ (a typical subscription)",
            Selection(selectors=typed, q=parse_q("temperature>20;relativeHumidity<0.9"), geo=near),
        ),
    ]


def _time(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            call()
        best = min(best, time.perf_counter() - start)
    return 1e6 * best / CALLS


def run() -> list[Timing]:
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    names = Names(type=terms.expand_type, attr=lambda t: expand_attr_name(terms, t))
    entity = _entity(terms)
    temperature = names.attr("temperature")

    def empty(e: EntityRecord) -> bool:
        return True

    def by_hand(e: EntityRecord) -> bool:
        return any(i.get("value", 0) > 20 for i in e.attrs.get(temperature, ()))

    timings = [
        Timing("ceiling: an empty function call", _time(lambda: empty(entity)), True),
        Timing("ceiling: temperature>20 written by hand", _time(lambda: by_hand(entity)), True),
    ]
    for label, sel in _selections(entity):
        compiled = compile_selection(sel, names)
        timings.append(
            Timing(label, _time(lambda c=compiled: c.matches(entity)), compiled.matches(entity))
        )
    return timings


def print_results(timings: list[Timing], load1: float) -> None:
    print(
        f"\nSelection evaluation in process (notifier): µs per matches() on one AirQualityObserved "
        f"(8 attributes), best of {ROUNDS} × {CALLS:,} calls; target ≤ {TARGET_US:g} µs; "
        f"load1 {load1:.2f}"
    )
    for t in timings:
        verdict = "" if t.label.startswith("ceiling") else ("PASS" if t.us <= TARGET_US else "MISS")
        print(
            f"  {t.label:<48} {t.us:7.2f} µs  {'match' if t.matched else 'no match':<8} {verdict}"
        )
