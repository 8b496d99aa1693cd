"""The temporal query parameters, table-driven: what is accepted and what each refusal names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from city_os.errors import BadRequestData
from city_os.temporal.params import parse_duration, parse_temporal

T = "2020-08-01T12:00:00Z"
T2 = "2020-08-02T12:00:00Z"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("PT1H", timedelta(hours=1)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(days=7)),
        ("PT1M30S", timedelta(seconds=90)),
        ("P1DT12H", timedelta(hours=36)),
        ("P1M", timedelta(days=30)),
        ("P1Y", timedelta(days=365)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P0D", None),
        ("PT0S", None),
    ],
)
def test_durations(raw: str, expected: timedelta | None) -> None:
    assert parse_duration(raw) == expected


@pytest.mark.parametrize("raw", ["", "P", "PT", "1H", "PT1", "P1H", "bogus", "PT-1H"])
def test_bad_durations_name_the_parameter(raw: str) -> None:
    with pytest.raises(BadRequestData, match="aggrPeriodDuration"):
        parse_duration(raw)


def test_a_full_query() -> None:
    tq = parse_temporal(
        {"timerel": "between", "timeAt": T, "endTimeAt": T2, "timeproperty": "modifiedAt",
         "lastN": "5", "aggrMethods": "avg,max,avg", "aggrPeriodDuration": "PT1H"},
        aggregated=True,
    )  # fmt: skip
    assert tq.timerel == "between" and tq.column == "modified_at" and tq.last_n == 5
    assert tq.time_at == datetime(2020, 8, 1, 12, tzinfo=UTC)
    assert tq.aggr_methods == ("avg", "max") and tq.aggr_period == timedelta(hours=1)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"timerel": "during", "timeAt": T}, "timerel"),
        ({"timerel": "after"}, "timeAt"),
        ({"timeAt": T}, "timerel"),
        ({"timerel": "between", "timeAt": T}, "endTimeAt"),
        ({"timerel": "between", "timeAt": T2, "endTimeAt": T}, "endTimeAt"),
        ({"timerel": "before", "timeAt": T, "endTimeAt": T2}, "endTimeAt"),
        ({"endTimeAt": T2}, "endTimeAt"),
        ({"timerel": "after", "timeAt": "2020-13-01T00:00:00Z"}, "timeAt"),
        ({"timeproperty": "observed"}, "timeproperty"),
        ({"lastN": "0"}, "lastN"),
        ({"lastN": "-1"}, "lastN"),
        ({"lastN": "x"}, "lastN"),
        ({"lastN": True}, "lastN"),
    ],
)
def test_refusals_name_the_parameter(raw: dict[str, object], named: str) -> None:
    with pytest.raises(BadRequestData, match=named):
        parse_temporal(raw)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({}, "aggrMethods"),
        ({"aggrMethods": "median"}, "aggrMethods"),
        ({"aggrMethods": []}, "aggrMethods"),
        ({"aggrMethods": "avg", "aggrPeriodDuration": "hourly"}, "aggrPeriodDuration"),
    ],
)
def test_aggregation_refusals(raw: dict[str, object], named: str) -> None:
    with pytest.raises(BadRequestData, match=named):
        parse_temporal(raw, aggregated=True)


def test_methods_as_an_array() -> None:
    assert parse_temporal({"aggrMethods": ["sum", "sumsq"]}, aggregated=True).aggr_methods == (
        "sum", "sumsq",
    )  # fmt: skip
