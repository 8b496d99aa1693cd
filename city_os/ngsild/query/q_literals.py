"""Literals of the NGSI-LD Query Language (GS CIM 009 v1.9.1 §4.9, §4.6.3): date/time values and
the text checks every q string passes.

Layer: ngsild/ (pure, no I/O). Split from q.py, which parses the grammar around them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import Temporal

DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,6}))?Z?"
)
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,6}))?Z?")


def check_text(value: str, what: str) -> str:
    """Reject what PostgreSQL text cannot hold (NUL, lone surrogates)."""
    if "\x00" in value:
        raise BadRequestData(f"{what}: NUL characters are not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequestData(f"{what}: invalid Unicode text") from exc
    return value


def temporal_literal(text: str) -> Temporal | None:
    """Parse a whole dateTime / date / time literal (§4.6.3); None if it is none of them.

    Raises ``ValueError`` when it has the shape of one but is no real date or time.
    """
    if m := DATETIME.fullmatch(text):
        y, mo, d, h, mi, s, frac = m.groups()
        datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))  # validates
        micro = (frac or "").ljust(6, "0")
        return Temporal(text, "dateTime", f"{y}-{mo}-{d}T{h}:{mi}:{s}.{micro}")
    if m := DATE.fullmatch(text):
        y, mo, d = m.groups()
        date(int(y), int(mo), int(d))  # validates
        return Temporal(text, "date", f"{y}-{mo}-{d}")
    if m := TIME.fullmatch(text):
        h, mi, s, frac = m.groups()
        time(int(h), int(mi), int(s))  # validates
        micro = (frac or "").ljust(6, "0")
        return Temporal(text, "time", f"{h}:{mi}:{s}.{micro}")
    return None
