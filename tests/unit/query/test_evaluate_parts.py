"""The evaluator's parts, table-driven: regex translation and refusals, date/time readings,
near's spheroid decision (geodesic distances from geographiclib's own direct problem)."""

from __future__ import annotations

import json

import pytest
from geographiclib.geodesic import Geodesic

from city_os.errors import BadRequestData
from city_os.ngsild.query import datetimes
from city_os.ngsild.query.ast import Temporal
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import temporal_literal
from city_os.ngsild.query.regex import check_pattern, compile_pattern
from city_os.ngsild.representation import EntityRecord

NAMES = Names(type=lambda t: t, attr=lambda t: t)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",
        "(?=a)",
        "(?!a)",
        "(?<=a)b",
        r"\m",
        r"\y",
        "a{256}",
        "a++",
        "[[.a.]]",
        "[[=a=]]",
        "(?x) a",
        "(?n)a",
        "a(?i)b",
        r"[\D]",
        "[[:punct:]]",
        "[[:nope:]]",
        "a{",
        "",
        r"\x{110000}",
    ],
)
def test_patterns_that_cannot_be_mirrored_are_refused(pattern: str) -> None:
    with pytest.raises(BadRequestData, match="idPattern"):
        check_pattern(pattern, "idPattern")


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    """``(a+)+$`` backtracks exponentially on "aaa…b" in a backtracking engine: 2^40 steps
    here. RE2 answers at once (this would not finish otherwise, hence no timing assertion)."""
    assert not compile_pattern("(a+)+$").search("a" * 40 + "b")
    assert compile_pattern("(a+)+$").search("a" * 40)


REGEX_CASES: list[tuple[str, str, bool]] = [
    ("a.b", "a\nb", True),  # . matches a newline in ARE
    ("x$", "x\n", False),  # $ is the end of the text only
    (r"x\Z", "ax", True),
    (r"\bx", "\bx", True),  # ARE's \b is a backspace
    (r"a\Bb", "a\\b", True),  # ARE's \B is a backslash
    (r"\x41", "A", True),
    (r"\u3042", "あ", True),
    ("***=a.b", "a.b", True),
    ("***=a.b", "axb", False),
    ("(?i)SAGA", "saga", True),
    ("(?i)[[:upper:]]", "ひ", True),  # either case is any letter then
    ("[[:upper:]]", "ひ", False),
    (r"^\w+$", "避難所_1", True),
    (r"\s", "\u3000", True),  # the ideographic space
    (r"\d", "٣", False),  # ASCII digits only
    ("[]a]", "]", True),
    ("[a-]", "-", True),
    (r"[\w-]+$", "saga-1", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), REGEX_CASES)
def test_patterns_mean_what_they_mean_in_postgresql(
    pattern: str, text: str, expected: bool
) -> None:
    assert compile_pattern(pattern).search(text) is expected


def _t(text: str) -> Temporal:
    literal = temporal_literal(text)
    assert literal is not None
    return literal


UTC_MIDNIGHT = datetimes.literal(_t("2024-06-01T00:00:00Z"))
HALF_PAST = datetimes.literal(_t("2024-06-01T00:00:00.5Z"))
READING_CASES: list[tuple[str, str, datetimes.Instant | None]] = [
    # (stored text, reader, the instant it reads as) — the literal's instant for comparison
    ("2024-06-01T00:00:00Z", "read_zulu", UTC_MIDNIGHT),
    ("2024-06-01T09:00:00+09:00", "read_iso", UTC_MIDNIGHT),
    ("2024-06-01 09:00:00+09", "read_iso", UTC_MIDNIGHT),
    ("2024-05-31T19:30:00-04:30", "read_iso", UTC_MIDNIGHT),
    (
        "2024-06-01T00:00:00.5Z",
        "read_zulu_fraction",
        datetimes.literal(_t("2024-06-01T00:00:00.5Z")),
    ),
    ("2024-06-01T00:00:00.5Z", "read_zulu", None),
    ("2024-06-01", "read_iso", UTC_MIDNIGHT),  # midnight
    ("2024-06-01", "read_date", datetimes.literal(_t("2024-06-01"))),
    ("2024-06-01T00:00:00Z", "read_date", None),
    ("10:00:00Z", "read_time_zulu", datetimes.literal(_t("10:00:00Z"))),
    ("2024-06-01T10:00Z", "read_iso", None),  # no seconds: PostgreSQL reads nothing either
    ("2024-06-01T00:00:00+16:00", "read_iso", None),
    ("2021-02-29", "read_iso", None),
    ("0000-01-01", "read_date", (0, -719528 * 86_400_000_000)),  # 1 BC
    ("2024-00-00", "read_date", datetimes.literal(_t("2024-01-01"))),  # 0 = not given
]


@pytest.mark.parametrize(("text", "reader", "expected"), READING_CASES)
def test_readings(text: str, reader: str, expected: datetimes.Instant | None) -> None:
    assert getattr(datetimes, reader)(text) == expected


def test_times_of_day_and_instants_do_not_compare() -> None:
    day = datetimes.literal(_t("2024-06-01"))
    assert datetimes.compare(day, datetimes.literal(_t("10:00:00Z"))) is None
    zoned = datetimes.read_iso("19:00:00+09:00")
    assert zoned is not None
    # timetz order: the UTC time first, then the zone (equal instants in other zones differ)
    assert datetimes.compare(zoned, datetimes.literal(_t("10:00:00Z"))) == -1


START = (33.2635, 130.2988)  # lat, lon: JR Saga station


def _at(metres: float, azimuth: float) -> list[float]:
    """The point ``metres`` away from START along the geodesic of ``azimuth`` (WGS84)."""
    found = Geodesic.WGS84.Direct(*START, azimuth, metres)
    return [found["lon2"], found["lat2"]]


def _near(distance: float, geometry: str, coordinates: object, value: dict[str, object]) -> bool:
    geo = parse_geoq(f"near;maxDistance=={distance}", geometry, json.dumps(coordinates), None)
    compiled = compile_selection(Selection(geo=geo), NAMES)
    entity = EntityRecord(
        "urn:x", ["T"], {"location": [{"type": "GeoProperty", "value": value}]}, None, "", ""
    )
    return compiled.matches(entity)


@pytest.mark.parametrize("azimuth", [0.0, 45.0, 90.0, 200.0])
def test_near_decides_on_the_spheroid_in_the_band(azimuth: float) -> None:
    """1,000 m along the geodesic: within 1,000.5 m, not within 999.5 m (the sphere alone is
    off by up to 0.6 %, so only the geodesic can decide these)."""
    here = {"type": "Point", "coordinates": _at(1000.0, azimuth)}
    centre = [START[1], START[0]]
    assert _near(1000.5, "Point", centre, here)
    assert not _near(999.5, "Point", centre, here)


def test_near_a_line_is_the_distance_to_its_nearest_point() -> None:
    """A meridian segment 2 km long through START; a point 800 m east of START."""
    line = {"type": "LineString", "coordinates": [_at(1000.0, 180.0), _at(1000.0, 0.0)]}
    east = _at(800.0, 90.0)
    assert _near(801.0, "Point", east, line)
    assert not _near(799.0, "Point", east, line)
    inside = {
        "type": "Polygon",
        "coordinates": [
            [_at(2000, 225), _at(2000, 315), _at(2000, 45), _at(2000, 135), _at(2000, 225)]
        ],
    }
    assert _near(1.0, "Point", east, inside)  # inside a shape: distance 0
