"""SSRF: the outbound client refuses loopback ([::1], 127.0.0.1), private (10/8), metadata
(169.254.169.254) and IPv4-mapped addresses, a host name resolving to a private address (a
static resolver stands in for DNS: /etc/hosts is the machine's, not the test's), and a
public-looking URL redirecting to any of those; the @context of an NGSI-LD request pointing there
is a 400 naming the URL, with nothing written."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from city_os.app import create_app
from city_os.auth.lifecycle import RESOLVER
from city_os.auth.network import OutboundPolicy, outbound_session
from city_os.errors import BadRequestData
from tests.conftest import test_settings as settings_for

Client = TestClient  # type: ignore[type-arg]
CONTEXT = {"@context": {"shelter": "https://example.org/shelter"}}


class StaticResolver(AbstractResolver):
    """DNS for the test: fixed names → addresses."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host not in self.names:
            raise OSError(f"{host}: no such name")
        address = self.names[host]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def context(_request: web.Request) -> web.Response:
        return web.json_response(CONTEXT, content_type="application/ld+json")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/ctx.jsonld", context)
    app.router.add_get("/redirect", redirect)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


# "public.example" stands for a public host: it resolves to the test server, on an address the
# policy of these tests allows (127.0.0.1 only), as a public address would be allowed.
NAMES = {
    "public.example": "127.0.0.1",
    "intranet.example": "10.0.0.5",
    "metadata.example": "169.254.169.254",
}
ONLY_THE_TEST_SERVER = OutboundPolicy.from_setting("127.0.0.1/32")


async def fetch(policy: OutboundPolicy, url: str) -> object:
    async with outbound_session(policy, resolver=StaticResolver(NAMES)) as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            return await resp.json(content_type=None)


async def test_allowed_addresses_are_reached(server: TestServer) -> None:
    port = server.port
    assert await fetch(ONLY_THE_TEST_SERVER, f"http://127.0.0.1:{port}/ctx.jsonld") == CONTEXT
    assert await fetch(ONLY_THE_TEST_SERVER, f"http://public.example:{port}/ctx.jsonld") == CONTEXT
    via = f"http://public.example:{port}/redirect?to=/ctx.jsonld"
    assert await fetch(ONLY_THE_TEST_SERVER, via) == CONTEXT


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/ctx.jsonld", "127.0.0.1 is a loopback address"),
        ("http://[::1]:{port}/ctx.jsonld", "::1 is a loopback address"),
        ("http://10.1.2.3/ctx.jsonld", "10.1.2.3 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata service address"),
        ("http://[::ffff:127.0.0.1]:{port}/ctx.jsonld", "a loopback address"),
        ("http://[fd00::1]/x", "fd00::1 is a private address"),
        ("http://0.0.0.0:{port}/x", "the unspecified address"),
        ("http://100.64.0.1/x", "carrier-grade NAT"),
        ("http://intranet.example/ctx.jsonld", "intranet.example resolves to 10.0.0.5 (a private"),
        ("http://metadata.example/latest", "169.254.169.254 (the cloud metadata service"),
    ],
)
async def test_non_public_addresses_are_refused(server: TestServer, url: str, why: str) -> None:
    url = url.format(port=server.port)
    with pytest.raises(BadRequestData) as refused:
        await fetch(OutboundPolicy(), url)
    assert refused.value.detail.startswith(str(URL(url)))  # as aiohttp normalises it
    assert why in refused.value.detail


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/ctx.jsonld",
        "http://10.0.0.9/",
        "http://intranet.example/ctx.jsonld",
        "http://localhost:{port}/ctx.jsonld",
    ],
)
async def test_a_redirect_to_a_refused_address_is_refused(server: TestServer, target: str) -> None:
    target = target.format(port=server.port)
    names = {**NAMES, "localhost": "::1"}
    url = f"http://public.example:{server.port}/redirect?to={target}"
    with pytest.raises(BadRequestData) as refused:
        async with outbound_session(ONLY_THE_TEST_SERVER, resolver=StaticResolver(names)) as s:
            async with s.get(url):
                pass
    assert refused.value.detail.startswith(target.split("?")[0])
    assert "outbound network policy" in refused.value.detail


def test_the_setting() -> None:
    policy = OutboundPolicy.from_setting("loopback, 10.20.0.0/16")
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::1")) is None
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.3.4")) == "a private address"
    assert OutboundPolicy.from_setting("private").refusal(ipaddress.ip_address("fd12::1")) is None
    with pytest.raises(ValueError, match="neither loopback"):
        OutboundPolicy.from_setting("intranet")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("192.168.1.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("169.254.10.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("::", "the unspecified address"),
        ("192.0.2.1", "a private address"),  # documentation (TEST-NET-1)
        ("240.0.0.1", "a private address"),  # reserved
        ("::ffff:10.0.0.1", "a private address"),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
        ("::127.0.0.1", "a loopback address"),  # IPv4-compatible
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert OutboundPolicy().refusal(ipaddress.ip_address(address)) == kind


async def test_an_ngsi_ld_request_with_a_private_context_is_a_400(
    client: Client, tenant: str
) -> None:
    url = "http://10.0.0.7/contexts/shelter.jsonld"
    link = f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    resp = await client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:ngsi-ld:Shelter:ssrf", "type": "Shelter"},
        headers={"Link": link, "NGSILD-Tenant": tenant},
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert url in body["detail"] and "private address" in body["detail"]
    resp = await client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Shelter:ssrf", headers={"NGSILD-Tenant": tenant}
    )
    assert resp.status == 404


async def test_a_subscription_endpoint_named_for_a_refused_address_is_a_400(tenant: str) -> None:
    """The host name of a notification endpoint is resolved when the subscription is created or
    changed: resolving only to refused addresses is a 400 naming them, and nothing is stored; a
    name that does not resolve now is accepted (delivery resolves and checks it again)."""
    app = create_app(settings_for(outbound_allow="127.0.0.1/32"))
    app[RESOLVER] = StaticResolver(NAMES)
    headers = {"NGSILD-Tenant": tenant}
    subs = "/ngsi-ld/v1/subscriptions"

    def subscription(uri: str) -> dict[str, object]:
        return {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": {"uri": uri}},
        }

    async with TestClient(TestServer(app)) as c:
        for uri, why in (
            ("http://intranet.example/notify", "10.0.0.5 (a private address)"),
            ("mqtt://metadata.example:1883/topic", "169.254.169.254 (the cloud metadata service"),
        ):
            resp = await c.post(subs, json=subscription(uri), headers=headers)
            body = await resp.json()
            assert resp.status == 400, body
            assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
            assert "notification.endpoint.uri" in body["detail"] and why in body["detail"], body
        listed = await c.get(subs, headers=headers)
        assert listed.status == 404  # nothing written: not even the tenant exists
        for uri in ("http://public.example:9/notify", "http://nowhere.example/notify"):
            resp = await c.post(subs, json=subscription(uri), headers=headers)
            assert resp.status == 201, await resp.text()
        one = resp.headers["Location"]
        patch = {"notification": {"endpoint": {"uri": "http://intranet.example/notify"}}}
        resp = await c.patch(one, json=patch, headers=headers)
        assert resp.status == 400 and "10.0.0.5" in (await resp.json())["detail"]
        got = await (await c.get(one, headers=headers)).json()
        assert got["notification"]["endpoint"]["uri"] == "http://nowhere.example/notify"
