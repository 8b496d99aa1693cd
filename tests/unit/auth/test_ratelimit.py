"""The token bucket, on a clock the test moves: burst, refill, per-client buckets, headers,
Retry-After, and bounded memory."""

from __future__ import annotations

import pytest

from city_os.auth.ratelimit import RateLimiter


def test_burst_then_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    verdicts = [limiter.take("a", 100.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert verdicts[3].retry_after == 1  # one token in 0.5 s, rounded up
    assert verdicts[3].reset == 2  # 3 tokens at 2/s
    assert limiter.take("a", 100.5).allowed  # refilled one
    assert not limiter.take("a", 100.5).allowed
    assert limiter.take("b", 100.5).allowed  # another client has its own bucket


def test_refill_stops_at_the_burst() -> None:
    limiter = RateLimiter(rate=10.0, burst=2)
    limiter.take("a", 0.0)
    assert limiter.take("a", 1000.0).remaining == 1


def test_slow_rate_retry_after() -> None:
    limiter = RateLimiter(rate=0.1, burst=1)
    assert limiter.take("a", 0.0).allowed
    refused = limiter.take("a", 1.0)
    assert not refused.allowed
    assert refused.retry_after == 9
    assert refused.headers() == {
        "X-RateLimit-Limit": "1",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "9",
    }


def test_idle_buckets_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("city_os.auth.ratelimit._PRUNE_AT", 10)
    limiter = RateLimiter(rate=1.0, burst=5)
    for n in range(10):
        limiter.take(f"c{n}", 0.0)
    limiter.take("late", 100.0)  # all others are full again by now
    assert len(limiter) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (1.0, 0)])
def test_bad_limits(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiter(rate, burst)
