"""The ``Via`` header of distributed operations and loop detection (§6.3.18, RFC 9110 §7.6.3).

Layer: federation/ (pure: no I/O). Every request the broker forwards to a context source
carries ``Via``: the hops the request already went through (as received) plus this broker,
as ``1.1 <identity>``. The identity is the broker's public origin (``CITYOS_PUBLIC_URL``, else
``http://HOST:PORT``) written as ``host:port``. A request that arrives with this broker's own
identity in ``Via`` has come round in a loop: it is not forwarded again, and an operation only
sources could serve is refused with 508 LoopDetected (§6.3.17). A source whose identity is
already in ``Via`` is skipped as well, so A→B→A stops at the second hop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from city_os.errors import NgsiLdError

PROTOCOL = "1.1"
MAX_VIA_HOPS = 32  # a longer chain is a loop in all but name


class LoopDetected(NgsiLdError):
    """A forwarded request came back to this broker (§6.3.17: 508 LoopDetected)."""

    type_uri: ClassVar[str] = "https://uri.etsi.org/ngsi-ld/errors/LoopDetected"
    status: ClassVar[int] = 508
    title: ClassVar[str] = "Loop detected"


def identity(url: str) -> str:
    """``host:port`` of a base URL or endpoint (the default port of its scheme made explicit),
    lower-cased: how a broker is named in ``Via``."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def parse(header: str | None) -> tuple[str, ...]:
    """The received-by identities of a ``Via`` value (comments and protocol names dropped)."""
    if not header:
        return ()
    hops: list[str] = []
    for item in header.split(","):
        item = item.strip()
        if "(" in item:
            item = item[: item.index("(")].strip()
        words = item.split()
        if not words:
            continue
        received_by = words[1] if len(words) > 1 else words[0]
        hops.append(received_by.lower())
    return tuple(hops[: MAX_VIA_HOPS + 1])


@dataclass(frozen=True)
class Hops:
    """What an incoming request's ``Via`` says, seen by the broker named ``me``."""

    received: str | None  # the header as received (None: not a forwarded request)
    me: str

    @property
    def chain(self) -> tuple[str, ...]:
        return parse(self.received)

    @property
    def looped(self) -> bool:
        """This broker already handled the request: forwarding it again would loop."""
        chain = self.chain
        return self.me in chain or len(chain) > MAX_VIA_HOPS

    def visited(self, endpoint: str) -> bool:
        """Whether the source at ``endpoint`` already handled the request."""
        return identity(endpoint) in self.chain

    def outgoing(self) -> str:
        """The ``Via`` value of a request forwarded from here."""
        mine = f"{PROTOCOL} {self.me}"
        return f"{self.received}, {mine}" if self.received else mine
