"""HTTP(S) delivery (§5.8.6, §6.3.x binding): POST the notification to the endpoint URI.

Layer: notifier/. One aiohttp session for every endpoint, so connections are reused
(keep-alive) and each host gets at most ``per_host`` of them — the dispatcher's per-endpoint
concurrency is never held up by another endpoint's pool. A 2xx answer is a delivery; a
timeout, a connection failure, a 5xx, 408 or 429 is transient (retried); any other answer means
the receiver refused this notification (not retried).
"""

from __future__ import annotations

import asyncio

import aiohttp

from city_os.notifier.channels import Delivery, Outcome

_TRANSIENT_STATUS = frozenset({408, 425, 429})


class HttpChannel:
    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self._per_host)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def send(self, delivery: Delivery) -> Outcome:
        timeout = aiohttp.ClientTimeout(total=delivery.endpoint.timeout)
        try:
            async with self._client().post(
                delivery.endpoint.uri,
                data=delivery.body,
                headers=delivery.headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            return Outcome(False, True, f"no answer within {delivery.endpoint.timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(False, True, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= status < 300:
            return Outcome(True)
        transient = status >= 500 or status in _TRANSIENT_STATUS
        return Outcome(False, transient, f"HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            # let the connector's transports finish closing (aiohttp's advice)
            await asyncio.sleep(0)
