"""HTTP(S) delivery (§5.8.6, §6.3.x binding): POST the notification to the endpoint URI (or the
method its notifierInfo ``method`` names: NGSIv2 ``httpCustom.method``).

Layer: notifier/. Notifications go through one lean keep-alive HTTP/1.1 client
(channels/http_client.py: aiohttp's client cost most of the notifier's CPU in bench
``notify``); its pool has no limit of its own: the dispatcher bounds the requests in flight per
endpoint URI (``per_endpoint``), so a hanging receiver holds only its endpoint's connections.
The client follows the outbound network policy (auth/network.py): an endpoint on a refused
address fails for good, saying why. A 2xx answer is a delivery; a timeout, a connection
failure, a 5xx, 408, 425 or 429 is transient (retried, not before its ``Retry-After``); any
other answer means the receiver refused this notification (not retried). An endpoint whose
``notifierInfo`` carries a browser's push keys is a Web Push endpoint: its notifications go
through channels/webpush.py, on an aiohttp session bound to the same policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp

from city_os.auth.network import OutboundPolicy, outbound_session
from city_os.errors import NgsiLdError
from city_os.notifier.channels import Delivery, Outcome, retry_after
from city_os.notifier.channels.http_client import HttpClient
from city_os.notifier.channels.webpush import WebPushChannel, is_push_endpoint

_TRANSIENT_STATUS = frozenset({408, 425, 429})
# notifierInfo key naming the HTTP method (NGSIv2 httpCustom.method); POST without it.
METHOD_KEY = "method"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "GET"})


def _method(delivery: Delivery) -> str:
    for key, value in delivery.endpoint.notifier_info:
        if key == METHOD_KEY and value.upper() in METHODS:
            return value.upper()
    return "POST"


class HttpChannel:
    def __init__(
        self,
        policy: OutboundPolicy,
        per_endpoint: int,
        vapid_key: Callable[[], Awaitable[bytes]] | None = None,
        push_subject: str = "",
    ) -> None:
        self._policy = policy
        self._per_endpoint = per_endpoint  # enforced by the dispatcher's queues
        self._session: aiohttp.ClientSession | None = None  # Web Push (few, heavy messages)
        self._http = HttpClient(policy)  # notifications
        self._push = WebPushChannel(self._client, vapid_key, push_subject) if vapid_key else None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = outbound_session(
                self._policy,
                connector_options={"limit": 0, "limit_per_host": 0},
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, delivery: Delivery) -> Outcome:
        if is_push_endpoint(dict(delivery.endpoint.notifier_info)):
            if self._push is None:
                return Outcome(False, False, "Web Push is not configured in this notifier")
            return await self._push.send(delivery)
        endpoint = delivery.endpoint
        try:
            answer = await self._http.request(
                _method(delivery), endpoint.uri, delivery.headers, delivery.body, endpoint.timeout
            )
        except TimeoutError:
            return Outcome(False, True, f"no answer within {endpoint.timeout:g} s")
        except NgsiLdError as exc:  # the outbound policy refused the address
            return Outcome(False, False, exc.detail)
        except ValueError as exc:  # e.g. a header value no HTTP request can carry
            return Outcome(False, False, str(exc)[:500])
        except OSError as exc:  # ConnectionError, ssl.SSLError, DNS failures…
            return Outcome(False, True, f"{type(exc).__name__}: {exc}"[:500])
        status = answer.status
        wait = retry_after(answer.headers.get("retry-after"))
        if 200 <= status < 300:
            return Outcome(True)
        transient = status >= 500 or status in _TRANSIENT_STATUS
        return Outcome(False, transient, f"HTTP {status}", retry_after=wait if transient else None)

    async def close(self) -> None:
        await self._http.close()
        if self._session is not None:
            await self._session.close()
            # let the connector's transports finish closing (aiohttp's advice)
            await asyncio.sleep(0)
