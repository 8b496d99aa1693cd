"""Temporal query parameters (§4.11, §6.3.14, §5.2.21 TemporalQuery, §4.5.19 aggregation).

Layer: temporal/ (pure, no I/O). ``timerel``/``timeAt``/``endTimeAt``/``timeproperty``/``lastN``
and ``aggrMethods``/``aggrPeriodDuration`` come from query parameters or a Query body's
``temporalQ``; every bad value is a BadRequestData naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from city_os.errors import BadRequestData
from city_os.ngsild.entity import check_datetime, parse_datetime

TIMERELS = frozenset({"before", "after", "between"})
# The Scope's history is kept as the instances of this attribute (§4.5.6, §4.18).
SCOPE_IRI = "https://uri.etsi.org/ngsi-ld/scope"
# timeproperty → the attr_instances column it is stored in (fixed names, never request text).
TIME_COLUMNS = {
    "observedAt": "observed_at",
    "createdAt": "created_at",
    "modifiedAt": "modified_at",
    "deletedAt": "deleted_at",
}
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(
    r"^P(?!$)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
# A year and a month have no fixed length: as a fixed length (registrations' durations) they
# count 365 and 30 days; aggregation periods use calendar arithmetic instead (``calendar``).
_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


@dataclass(frozen=True)
class TemporalQuery:
    timerel: str | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"
    last_n: int | None = None
    aggr_methods: tuple[str, ...] = ()
    aggr_period: timedelta | None = None  # None: one period over the whole range
    # A period with years or months: its PostgreSQL interval text ("14 months 7200 seconds"),
    # binned with calendar arithmetic in UTC; aggr_period is then its fixed part (or None).
    aggr_calendar: str | None = None

    @property
    def column(self) -> str:
        return TIME_COLUMNS[self.timeproperty]


def parse_duration(raw: str, what: str = "aggrPeriodDuration") -> timedelta | None:
    """An ISO 8601 duration (PnYnMnWnDTnHnMnS) as a fixed length; a zero one (P0D, PT0S) is
    None: one period over the whole time range (§4.5.19, the default)."""
    m = _DURATION.match(raw) if isinstance(raw, str) else None
    if m is None:
        raise BadRequestData(f"{what} {raw!r} is not an ISO 8601 duration (e.g. PT1H, P1D)")
    seconds = sum(float(v) * unit for v, unit in zip(m.groups(), _UNIT_SECONDS, strict=True) if v)
    return timedelta(seconds=seconds) if seconds > 0 else None


def parse_period(raw: str) -> tuple[timedelta | None, str | None]:
    """aggrPeriodDuration: (its fixed part, its calendar interval text when it has years or
    months). P1M is a calendar month, P1Y a calendar year (§4.5.19: ISO 8601 durations)."""
    parse_duration(raw)  # the same check and error
    m = _DURATION.match(raw)
    assert m is not None
    years, months, *rest = (float(v) if v else 0.0 for v in m.groups())
    seconds = sum(v * unit for v, unit in zip(rest, _UNIT_SECONDS[2:], strict=True))
    fixed = timedelta(seconds=seconds) if seconds > 0 else None
    total_months = years * 12 + months
    if total_months == 0:
        return fixed, None
    return fixed, f"{total_months:g} months {seconds:g} seconds"


def _time(raw: Any, what: str) -> datetime:
    if not isinstance(raw, str):
        raise BadRequestData(f"{what} must be a DateTime string")
    return parse_datetime(check_datetime(raw, what))


def _last_n(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise BadRequestData("lastN must be a positive integer")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.isdigit():
        value = int(raw)
    else:
        raise BadRequestData(f"lastN must be a positive integer, not {raw!r}")
    if value < 1:
        raise BadRequestData("lastN must be a positive integer (1 or more)")
    return min(value, 1_000_000)


def _methods(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise BadRequestData("aggrMethods must be a comma-separated list or an array")
    out: list[str] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name not in AGGR_METHODS:
            raise BadRequestData(
                f"aggrMethods: unknown aggregation method {name!r}"
                f" (one of {', '.join(AGGR_METHODS)})"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def parse_temporal(
    raw: Mapping[str, Any], *, aggregated: bool = False, require_timerel: bool = False
) -> TemporalQuery:
    """The temporal query of ``raw`` (query parameters, or a temporalQ object)."""
    timerel = raw.get("timerel")
    time_at = raw.get("timeAt")
    end = raw.get("endTimeAt")
    if timerel in ("", None):
        timerel = None
    if timerel is not None and (not isinstance(timerel, str) or timerel not in TIMERELS):
        raise BadRequestData(f"timerel must be before, after or between, not {timerel!r}")
    if timerel is None and require_timerel:
        raise BadRequestData("a temporal query needs timerel and timeAt")
    if timerel is None and time_at not in (None, ""):
        raise BadRequestData("timeAt needs timerel (before, after or between)")
    at = end_at = None
    if timerel is not None:
        if time_at in (None, ""):
            raise BadRequestData(f"timerel={timerel} needs timeAt")
        at = _time(time_at, "timeAt")
        if timerel == "between":
            if end in (None, ""):
                raise BadRequestData("timerel=between needs endTimeAt")
            end_at = _time(end, "endTimeAt")
            if end_at <= at:
                raise BadRequestData("endTimeAt must be later than timeAt")
        elif end not in (None, ""):
            raise BadRequestData(f"endTimeAt only goes with timerel=between, not {timerel}")
    elif end not in (None, ""):
        raise BadRequestData("endTimeAt needs timerel=between")
    prop = raw.get("timeproperty") or "observedAt"
    if not isinstance(prop, str) or prop not in TIME_COLUMNS:
        raise BadRequestData(
            f"timeproperty must be observedAt, createdAt, modifiedAt or deletedAt, not {prop!r}"
        )
    methods = _methods(raw.get("aggrMethods"))
    period = raw.get("aggrPeriodDuration")
    if aggregated and not methods:
        raise BadRequestData("the aggregated representation needs aggrMethods")
    fixed = calendar = None
    if aggregated and period not in (None, ""):
        fixed, calendar = parse_period(period)
    return TemporalQuery(
        timerel=timerel,
        time_at=at,
        end_time_at=end_at,
        timeproperty=prop,
        last_n=_last_n(raw.get("lastN")),
        aggr_methods=methods if aggregated else (),
        aggr_period=fixed,
        aggr_calendar=calendar,
    )
