"""Date/time text read the way the SQL engine reads it, for the in-process q evaluator.

Layer: ngsild/ (pure). Temporal q terms compare stored text with PostgreSQL's jsonpath
``.datetime()`` (store/postgres/query_sql.py, ``_predicate``): two templates for UTC date-times
ending in ``Z`` (``_ZULU``: whole seconds; ``_ZULU_FRACTION``: 1 to 6 fractional digits), the
template-less ISO 8601 reading (``_ISO``: a date, a time or a date-time with ``T`` or spaces, an
optional fraction and an optional UTC offset ``±H``, ``±HH``, ``±HH:MM`` up to 15:59), one
template for dates and two for times ending in ``Z``. A reading gives a typed value, compared as
PostgreSQL compares them in ``jsonb_path_exists_tz`` with the session time zone UTC:

* dates, timestamps and timestamptz lie on one time line (a date is its midnight, a timestamp
  without zone is UTC): ``(0, microseconds since 1970-01-01T00:00Z)``;
* times and times with zone: ``(1, (microseconds - offset, -offset seconds))``, PostgreSQL's
  timetz order (the UTC time first, then the zone), a time without zone having offset 0;
* values of the two kinds are not comparable (the term is unknown: no match).

PostgreSQL's ``to_timestamp`` is more lenient than this: fields of 1 to 5 digits (years) or 1 to
2 digits (others) are mirrored, with surrounding white space; it also reads 3-digit months and
days, signed years (BC) and oddities such as ``10:00:00. 5Z`` (= 0.05 s), which are not.
Years outside 1..9999 (``0000`` is 1 BC) are computed on the proleptic Gregorian calendar; a
month or day of 0 reads as 1, as in PostgreSQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final

from city_os.ngsild.query.ast import Temporal

Instant = tuple[int, Any]  # (axis, key): see the module docstring
Reader = Callable[[str], Instant | None]

_WS: Final = r"[ \t\n\r\f\v]*"
_DATE: Final = r"(\d{1,5})-(\d{1,2})-(\d{1,2})"
_CLOCK: Final = r"(\d{1,2}):(\d{1,2}):(\d{1,2})"
_FRACTION: Final = r"(?:\.(\d{1,6}))?"
_OFFSET: Final = r"(?: *([+-])(\d{1,2})(?::(\d{1,2}))?)?"
_ZULU_RE: Final = re.compile(rf"{_WS}{_DATE}T{_CLOCK}Z{_WS}", re.ASCII)
_ZULU_FRACTION_RE: Final = re.compile(rf"{_WS}{_DATE}T{_CLOCK}\.(\d{{1,6}})Z{_WS}", re.ASCII)
_DATE_RE: Final = re.compile(rf"{_WS}{_DATE}{_WS}", re.ASCII)
_TIME_ZULU_RE: Final = re.compile(rf"{_WS}{_CLOCK}Z{_WS}", re.ASCII)
_TIME_ZULU_FRACTION_RE: Final = re.compile(rf"{_WS}{_CLOCK}\.(\d{{1,6}})Z{_WS}", re.ASCII)
_ISO_DATETIME_RE: Final = re.compile(
    rf"{_WS}{_DATE}(?:T| +){_CLOCK}{_FRACTION}{_OFFSET}{_WS}", re.ASCII
)
_ISO_TIME_RE: Final = re.compile(rf"{_WS}{_CLOCK}{_FRACTION}{_OFFSET}{_WS}", re.ASCII)

_CACHED: Final = 4096  # readings of recent texts: every subscription reads the same values
_US_PER_DAY: Final = 86_400_000_000
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MAX_OFFSET: Final = 16 * 3600  # PostgreSQL accepts UTC offsets up to 15:59:59


def _days(year: int, month: int, day: int) -> int | None:
    """Days from 1970-01-01 (proleptic Gregorian, astronomical years), None if no such date.
    A month or day of 0 is January or the 1st: to_timestamp takes 0 for "not given"."""
    month, day = month or 1, day or 1
    if not 1 <= month <= 12:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        return None
    # Howard Hinnant's days_from_civil
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _clock(h: str, mi: str, s: str, fraction: str | None) -> int | None:
    hour, minute, second = int(h), int(mi), int(s)
    if hour > 23 or minute > 59 or second > 59:
        return None
    micro = int((fraction or "").ljust(6, "0"))
    return ((hour * 60 + minute) * 60 + second) * 1_000_000 + micro


def _offset(sign: str | None, h: str | None, mi: str | None) -> int | None:
    """The UTC offset in seconds (east positive); None when out of range."""
    if sign is None or h is None:
        return 0
    minutes = int(mi or "0")
    seconds = int(h) * 3600 + minutes * 60
    if minutes > 59 or seconds >= _MAX_OFFSET:
        return None
    return -seconds if sign == "-" else seconds


def _on_line(date: tuple[str, ...], clock: int | None, shift: int = 0) -> Instant | None:
    days = _days(int(date[0]), int(date[1]), int(date[2]))
    if days is None or clock is None:
        return None
    return (0, days * _US_PER_DAY + clock - shift * 1_000_000)


@functools.lru_cache(maxsize=_CACHED)
def read_zulu(text: str) -> Instant | None:
    """Template ``YYYY-MM-DD"T"HH24:MI:SS"Z"`` (a timestamp, UTC)."""
    m = _ZULU_RE.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    return _on_line(g, _clock(g[3], g[4], g[5], None))


@functools.lru_cache(maxsize=_CACHED)
def read_zulu_fraction(text: str) -> Instant | None:
    """Template ``YYYY-MM-DD"T"HH24:MI:SS.FF6"Z"``."""
    m = _ZULU_FRACTION_RE.fullmatch(text)
    if m is None:
        return None
    g = m.groups()
    return _on_line(g, _clock(g[3], g[4], g[5], g[6]))


@functools.lru_cache(maxsize=_CACHED)
def read_iso(text: str) -> Instant | None:
    """``.datetime()`` without a template: ISO 8601 dates, times and date-times, with offsets."""
    if m := _ISO_DATETIME_RE.fullmatch(text):
        g = m.groups()
        shift = _offset(g[7], g[8], g[9])
        if shift is None:
            return None
        return _on_line(g[:3], _clock(g[3], g[4], g[5], g[6]), shift)
    if m := _DATE_RE.fullmatch(text):
        return _on_line(m.groups(), 0)
    if m := _ISO_TIME_RE.fullmatch(text):
        g = m.groups()
        clock, shift = _clock(g[0], g[1], g[2], g[3]), _offset(g[4], g[5], g[6])
        if clock is None or shift is None:
            return None
        return (1, (clock - shift * 1_000_000, -shift))
    return None


@functools.lru_cache(maxsize=_CACHED)
def read_date(text: str) -> Instant | None:
    """Template ``YYYY-MM-DD``."""
    m = _DATE_RE.fullmatch(text)
    return _on_line(m.groups(), 0) if m else None


@functools.lru_cache(maxsize=_CACHED)
def read_time_zulu(text: str) -> Instant | None:
    """Template ``HH24:MI:SS"Z"`` (a time without zone)."""
    m = _TIME_ZULU_RE.fullmatch(text)
    clock = _clock(m[1], m[2], m[3], None) if m else None
    return None if clock is None else (1, (clock, 0))


@functools.lru_cache(maxsize=_CACHED)
def read_time_zulu_fraction(text: str) -> Instant | None:
    """Template ``HH24:MI:SS.FF6"Z"``."""
    m = _TIME_ZULU_FRACTION_RE.fullmatch(text)
    clock = _clock(m[1], m[2], m[3], m[4]) if m else None
    return None if clock is None else (1, (clock, 0))


# Per literal kind, the readings the SQL engine tries on stored text (query_sql._TEMPLATES),
# each an alternative of its own.
READERS: Final[dict[str, tuple[Reader, ...]]] = {
    "dateTime": (read_zulu, read_zulu_fraction, read_iso),
    "date": (read_date,),
    "time": (read_time_zulu, read_time_zulu_fraction),
}


def literal(value: Temporal) -> Instant:
    """A q literal (always UTC; ``canonical`` as the parser normalised it)."""
    text = value.canonical
    if value.kind == "time":
        found = _clock(text[0:2], text[3:5], text[6:8], text[9:15])
        assert found is not None  # the parser validated it
        return (1, (found, 0))
    date = (text[0:4], text[5:7], text[8:10])
    clock = 0 if value.kind == "date" else _clock(text[11:13], text[14:16], text[17:19], text[20:])
    instant = _on_line(date, clock)
    assert instant is not None  # the parser validated it
    return instant


def compare(a: Instant, b: Instant) -> int | None:
    """-1, 0 or 1; None when a time of day meets a point on the time line."""
    if a[0] != b[0]:
        return None
    x, y = a[1], b[1]
    return int(x > y) - int(x < y)
