"""aggrPeriodDuration with months and years uses calendar arithmetic (§4.5.19: ISO 8601
durations): P1M periods start on the same day of each month, whatever its length, and P1Y on
the same day of each year; checked against sums the test computes from its own instances, on
both aggregation paths (the hourly rollups and the instances)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from city_os.temporal.params import parse_period
from tests.integration.temporal.helpers import Client, create, get, iso

EID = "urn:ngsi-ld:Meter:1"
DAYS = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=d) for d in range(0, 400, 3)]


def _meter() -> dict[str, object]:
    return {
        "id": EID,
        "type": "Meter",
        "energy": [
            {"type": "Property", "value": float(i), "observedAt": iso(t)}
            for i, t in enumerate(DAYS)
        ],
    }


def _month(t: datetime, k: int) -> datetime:
    y, m = divmod(t.month - 1 + k, 12)
    return t.replace(year=t.year + y, month=m + 1)


async def _periods(client: Client, tenant: str, period: str, at: str) -> list[list[object]]:
    status, body, _ = await get(
        client, tenant, f"/entities/{EID}", options="aggregatedValues", aggrMethods="sum",
        aggrPeriodDuration=period, timerel="after", timeAt=at,
    )  # fmt: skip
    assert status == 200, body
    return list(body["energy"]["sum"])


async def test_months_and_years_follow_the_calendar(client: Client, tenant: str) -> None:
    await create(client, tenant, _meter())
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    for at in (iso(origin), "2024-01-01T00:30:00Z"):  # on the hour (rollups), off it (exact)
        start = datetime.fromisoformat(at.replace("Z", "+00:00"))
        months = await _periods(client, tenant, "P1M", at)
        expected = []
        for k in range(14):
            lo, hi = _month(start, k), _month(start, k + 1)
            values = [float(i) for i, t in enumerate(DAYS) if lo <= t < hi]
            if values:
                expected.append([sum(values), iso(lo), iso(hi)])
        assert months == expected, at
        years = await _periods(client, tenant, "P1Y", at)
        first = [float(i) for i, t in enumerate(DAYS) if t < start.replace(year=2025)]
        assert years[0] == [sum(first), iso(start), iso(start.replace(year=2025))]


def test_parse_period_keeps_months_apart() -> None:
    assert parse_period("P1M") == (None, "1 months 0 seconds")
    assert parse_period("P1Y2M3DT4H") == (timedelta(days=3, hours=4), "14 months 273600 seconds")
    assert parse_period("PT2H") == (timedelta(hours=2), None)
