"""Text the evaluator reads as PostgreSQL does: regular expressions (RE2 translation of ARE,
regex.py) and date/time readings (datetimes.py), each checked against PostgreSQL itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.ngsild.query import datetimes
from city_os.ngsild.query.regex import compile_pattern
from city_os.store.postgres.query_sql import _TEMPLATES, jsonpath_string
from tests.conftest import TEST_DSN
from tests.integration.query.strategies import TEXT_PROFILE

Sync = tuple[asyncio.AbstractEventLoop, asyncpg.Connection]


@pytest.fixture(scope="module")
def pg() -> Iterator[Sync]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(TEST_DSN, server_settings={"timezone": "UTC"}))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


def fetch(pg: Sync, sql: str, *args: Any) -> Any:
    return pg[0].run_until_complete(pg[1].fetchval(sql, *args))


# --- regular expressions -------------------------------------------------------------------------

_ALPHABET = [
    "a",
    "b",
    "A",
    "x",
    "1",
    "9",
    "_",
    "-",
    " ",
    ".",
    "\n",
    "避",
    "難",
    "ひ",
    "カ",
    "ー",
    "Ａ",
    "\u3000",
    "é",
]
_ATOMS = [
    *("a", "b", "x", "1", "避", "ひ", "-", " ", r"\.", "."),
    *(r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\Z", r"\A"),
    *("[ab]", "[^a]", "[a-c]", "[ぁ-ん]", r"[\d_]", r"[\w-]", "[[:alpha:]]", "[[:upper:]]"),
    *("[[:lower:]]", "[[:digit:]x]", "[^[:space:]]", "[]a]", "[-a]", "^", "$"),
]


@st.composite
def _regex(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 5)) == 0:
            inner = "|".join(draw(st.lists(_regex(depth + 1), min_size=1, max_size=2)))
            atom = draw(st.sampled_from(["({})", "(?:{})"])).format(inner)
        else:
            atom = draw(st.sampled_from(_ATOMS))
        if atom not in ("^", "$", r"\Z", r"\A"):
            atom += draw(st.sampled_from(["", "", "", "*", "+", "?", "*?", "{2}", "{1,3}", "{0,}"]))
        parts.append(atom)
    flags = draw(st.sampled_from(["", "", "(?i)", "***:", "(?s)"])) if depth == 0 else ""
    return flags + "".join(parts)


@settings(TEXT_PROFILE)
@given(
    pattern=_regex(), texts=st.lists(st.text(st.sampled_from(_ALPHABET), max_size=6), max_size=6)
)
def test_patterns_match_what_postgresql_matches(pg: Sync, pattern: str, texts: list[str]) -> None:
    compiled = compile_pattern(pattern)  # the grammar only uses what can be mirrored
    for text in texts:
        assert compiled.search(text) == fetch(pg, "SELECT $1 ~ $2", text, pattern), (pattern, text)


_BLOCKS = [
    (0x20, 0x7E),
    (0xA0, 0xFF),
    (0x2000, 0x206F),
    (0x3000, 0x30FF),
    (0x4E00, 0x4FFF),
    (0xFF00, 0xFFEF),
]
# glibc's C.UTF-8 tables differ from Unicode's categories here (documented in regex.py).
_KNOWN = {"\u302e", "\u302f", "\xaa", "\xba"}


@pytest.mark.parametrize(
    "cls",
    [
        r"\w",
        r"\W",
        r"\d",
        r"\s",
        r"\S",
        "[[:alpha:]]",
        "[[:alnum:]]",
        "[[:upper:]]",
        "[[:lower:]]",
        "[[:space:]]",
        "[[:blank:]]",
        "[[:xdigit:]]",
        "[[:cntrl:]]",
        "[[:digit:]]",
    ],
)
def test_character_classes_on_the_scripts_of_saga_data(pg: Sync, cls: str) -> None:
    """ASCII, Latin-1, punctuation, kana and CJK punctuation, kanji, full-width forms: each
    code point is in the class for RE2 exactly when it is for PostgreSQL (C.UTF-8)."""
    compiled = compile_pattern(f"^{cls}$")
    for low, high in _BLOCKS:
        rows = pg[0].run_until_complete(
            pg[1].fetch(
                "SELECT chr(i) AS c FROM generate_series($1::int, $2::int) i WHERE chr(i) ~ $3",
                low,
                high,
                f"^{cls}$",
            )
        )
        want = {r["c"] for r in rows}
        got = {chr(i) for i in range(low, high + 1) if compiled.search(chr(i))}
        assert (got ^ want) <= _KNOWN, sorted(got ^ want)


# --- date/time readings --------------------------------------------------------------------------

_READINGS = {  # each reader of datetimes.READERS, as the SQL engine writes the jsonpath method
    "dateTime": [
        *(f".datetime({jsonpath_string(t)})" for t in _TEMPLATES["dateTime"][0]),
        ".datetime()",
    ],
    "date": [f".datetime({jsonpath_string(t)})" for t in _TEMPLATES["date"][0]],
    "time": [f".datetime({jsonpath_string(t)})" for t in _TEMPLATES["time"][0]],
}


def _digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(0, 10**high - 1).map(str).map(lambda s: s.zfill(low) if len(s) < low else s)


_date = st.builds(lambda y, m, d: f"{y}-{m}-{d}", _digits(1, 5), _digits(1, 2), _digits(1, 2))
_clock = st.builds(lambda h, m, s: f"{h}:{m}:{s}", _digits(1, 2), _digits(1, 2), _digits(1, 2))
# Not "." alone: PostgreSQL then reads the offset as digits of the fraction (not mirrored).
_fraction = st.sampled_from(["", ".5", ".25", ".123456", ".1234567", ".000"])
_zone = st.sampled_from(
    [
        "",
        "Z",
        "+09:00",
        "+09",
        "-05:30",
        " +09:00",
        "+9",
        "+15:59",
        "+16:00",
        "+09:60",
        "+0900",
        "ZZ",
    ]
)
_space = st.sampled_from(["", "", " ", "\n"])
_TEXT = st.one_of(
    st.builds(
        lambda a, d, sep, c, f, z, b: f"{a}{d}{sep}{c}{f}{z}{b}",
        _space,
        _date,
        st.sampled_from(["T", " ", "  ", "t", "X"]),
        _clock,
        _fraction,
        _zone,
        _space,
    ),
    st.builds(lambda a, d, b: f"{a}{d}{b}", _space, _date, _space),
    st.builds(lambda a, c, f, z, b: f"{a}{c}{f}{z}{b}", _space, _clock, _fraction, _zone, _space),
    st.sampled_from(
        ["", "abc", "2024-06-01T10:00Z", "2021-02-29", "2020-02-29", "0000-01-01T00:00:00Z"]
    ),
)


def _pg_reading(pg: Sync, text: str, method: str) -> datetimes.Instant | None:
    """PostgreSQL's reading, through its canonical output (which ``read_iso`` reads back)."""
    out = fetch(
        pg,
        "SELECT jsonb_path_query_first_tz(to_jsonb($1::text), $2::jsonpath, '{}', true) #>> '{}'",
        text,
        "$" + method,
    )
    if out is None:
        return None
    if out.endswith(" BC"):  # year n BC is astronomical year 1 - n
        year, rest = out[:-3].split("-", 1)
        out = f"{1 - int(year)}-{rest}"
    reading = datetimes.read_iso(out)
    assert reading is not None, out
    return reading


@settings(TEXT_PROFILE)
@given(text=_TEXT)
def test_readings_are_postgresqls(pg: Sync, text: str) -> None:
    for kind, methods in _READINGS.items():
        for read, method in zip(datetimes.READERS[kind], methods, strict=True):
            assert read(text) == _pg_reading(pg, text, method), (text, method)
