"""Per-client rate limits: one token bucket per client, in this process's memory.

Layer: auth/ (pure; the clock is passed in). A bucket holds up to ``burst`` tokens and refills at
``rate`` per second; a request takes one. The client is whom ``Principal.rate_key`` names (an
API key, a token's user), else the remote address. Buckets that have refilled completely carry
no information and are dropped when the map grows, so memory stays bounded by the clients active
within ``burst / rate`` seconds.

Several API processes (``CITYOS_WORKERS``, replicas behind a load balancer) each keep their own
buckets: a client spread over N processes gets up to N times the rate. The limit protects each
process from one client's flood; a strict cluster-wide quota belongs in the gateway (or a shared
store such as Redis, not built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_PRUNE_AT = 100_000  # buckets kept before full (idle) ones are dropped


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int  # X-RateLimit-Limit: the burst
    remaining: int  # X-RateLimit-Remaining: whole tokens left
    reset: int  # X-RateLimit-Reset: seconds until the bucket is full again
    retry_after: int  # Retry-After when refused: seconds until one token is there

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # client → (tokens, at)

    def take(self, client: str, now: float) -> Verdict:
        tokens, at = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if client not in self._buckets and len(self._buckets) >= _PRUNE_AT:
            self._prune(now)
        self._buckets[client] = (tokens, now)
        return Verdict(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset=math.ceil((self.burst - tokens) / self.rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate)),
        )

    def _prune(self, now: float) -> None:
        self._buckets = {
            c: (t, at)
            for c, (t, at) in self._buckets.items()
            if t + (now - at) * self.rate < self.burst
        }

    def __len__(self) -> int:
        return len(self._buckets)
