"""Outbound network policy: the one aiohttp client for URLs that clients hand the broker.

Layer: auth/. Remote @contexts, notification endpoints and (later) context sources are URLs a
client chooses; fetched blindly they let anyone make the broker probe the internal network or
read a cloud metadata service (SSRF). ``outbound_session`` returns a ``ClientSession`` that
only reaches public addresses unless ``CITYOS_OUTBOUND_ALLOW`` allows more:

* host names are checked **after DNS resolution**, by the connector's resolver, so the address
  checked is the address connected to (no re-resolution in between, no DNS-rebinding window);
  refused addresses are dropped, and a name left with none is refused;
* literal addresses (which aiohttp never resolves) are checked by a client middleware, which
  runs for the first request **and every redirect**, so a public URL redirecting to a private
  one is refused before the connection.

Refused: everything that is not globally routable — loopback, RFC 1918 private, link-local
(169.254.0.0/16 with the 169.254.169.254 metadata service, fe80::/10), CGNAT 100.64.0.0/10,
unique-local fc00::/7 (fd00::/8), multicast, 0.0.0.0 and ::, documentation and reserved ranges —
also when written as IPv4-mapped (``::ffff:127.0.0.1``), IPv4-compatible, NAT64 (64:ff9b::/96),
6to4 or Teredo IPv6. The refusal is ``BadRequestData`` naming the URL, so a request whose
@context (or subscription endpoint) points there gets a 400 saying why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientHandlerType
from aiohttp.client_reqrep import ClientRequest, ClientResponse

from city_os.errors import BadRequestData

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_PRIVATE: Final = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_METADATA: Final = ipaddress.ip_address("169.254.169.254")
RESOLVE_TIMEOUT: Final = 2.0  # seconds, for check_resolved


@dataclass(frozen=True)
class OutboundPolicy:
    allowed: tuple[IPNetwork, ...] = ()  # non-public networks that may be reached anyway

    @classmethod
    def from_setting(cls, raw: str) -> OutboundPolicy:
        """``CITYOS_OUTBOUND_ALLOW``: comma-separated ``loopback``, ``private`` or CIDRs."""
        allowed: list[IPNetwork] = []
        for item in (i.strip() for i in raw.split(",")):
            if not item:
                continue
            if item == "loopback":
                allowed.extend(_LOOPBACK)
            elif item == "private":
                allowed.extend(_PRIVATE)
            else:
                try:
                    allowed.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(
                        f"{item!r} is neither loopback, private nor a network like 10.1.0.0/16"
                    ) from None
        return cls(tuple(allowed))

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be reached, or None if it may."""
        inner = embedded_ipv4(address) or address
        if any(inner in net or address in net for net in self.allowed):
            return None
        return kind(inner)

    def check_url(self, url: str, host: str | None) -> None:
        """Refuse a URL whose host is a literal address the policy refuses."""
        if host is None:
            raise BadRequestData(f"{url}: no host to connect to")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return  # a name: checked after resolution
        why = self.refusal(address)
        if why is not None:
            raise refused(url, f"{address} is {why}")

    async def check_resolved(
        self, url: str, host: str, resolver: AbstractResolver | None = None
    ) -> None:
        """Refuse a URL whose host name resolves only to addresses the policy refuses (a
        subscription's endpoint, when it is created or changed). A name that does not resolve
        now, or not within ``RESOLVE_TIMEOUT``, is left to delivery, which resolves and checks
        again on every connection (DNS can change in between)."""
        try:
            ipaddress.ip_address(host.strip("[]"))
            return  # a literal address: check_url's
        except ValueError:
            pass
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                await PolicyResolver(self, resolver).resolve(host, 0, socket.AF_UNSPEC)
        except RefusedHost as exc:
            raise refused(url, exc.why) from None
        except (OSError, TimeoutError):
            return


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)  # NAT64, or ::a.b.c.d
    return None


def kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    if address == _METADATA:
        return "the cloud metadata service address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _CGNAT:
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def refused(url: str, why: str) -> BadRequestData:
    return BadRequestData(f"{url} is refused by the outbound network policy: {why}")


class RefusedHost(BadRequestData):
    """A host name left without an allowed address (``why``); the client middleware names the
    URL it was for."""

    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"host {host} is refused by the outbound network policy: {why}")
        self.why = why


class PolicyResolver(AbstractResolver):
    """Resolves with ``inner`` (the system's resolver by default), then keeps only the
    addresses the policy allows."""

    def __init__(self, policy: OutboundPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        kept, why = [], []
        for result in results:
            reason = self._policy.refusal(ipaddress.ip_address(result["host"]))
            if reason is None:
                kept.append(result)
            else:
                why.append(f"{result['host']} ({reason})")
        if not kept:
            raise RefusedHost(host, f"{host} resolves to " + ", ".join(why or ["nothing"]))
        return kept

    async def close(self) -> None:
        await self._inner.close()


def outbound_session(
    policy: OutboundPolicy,
    *,
    resolver: AbstractResolver | None = None,
    middlewares: Iterable[Any] = (),
    connector_options: Mapping[str, Any] | None = None,
    **session_options: Any,
) -> aiohttp.ClientSession:
    """A ClientSession bound to the policy (on a running loop). ``resolver``: the inner
    resolver (tests use a static one); ``connector_options``: more ``TCPConnector`` arguments
    (connection limits); environment proxies are never used (a proxy would connect on our
    behalf, past the checks)."""

    async def check_literal(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        url = str(request.url)
        policy.check_url(url, request.url.host)
        try:
            return await handler(request)
        except RefusedHost as exc:
            raise refused(url, exc.why) from None

    connector = aiohttp.TCPConnector(
        resolver=PolicyResolver(policy, resolver), **dict(connector_options or {})
    )
    return aiohttp.ClientSession(
        connector=connector,
        middlewares=(check_literal, *middlewares),
        trust_env=False,
        **session_options,
    )
