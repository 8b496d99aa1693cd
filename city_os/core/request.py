"""The request context every core operation takes: tenant, term map, time and limits.

Layer: core/. Built by the API layer (``api.http.request_context``) or by commands; no aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from city_os.auth.principal import Principal


@dataclass(frozen=True)
class RequestContext:
    tenant: str
    terms: TermMap
    now: str
    context: Any = None  # the @context as the client sent it (echoed in responses)
    limits: Limits = DEFAULT_LIMITS  # what the broker accepts (Settings.limits)
    heavy: bool = False  # a large body: its pure-Python parsing runs off the event loop
    actor: dict[str, str] | None = None  # CloudEvents attributes naming who acts (auth/)
    principal: Principal | None = None  # who acts; None: an internal caller (everything allowed)
    # Distributed operations (federation/): the Via header received, the query parameters as
    # the client sent them (forwarded to context sources), and NGSILD-Warning values to answer.
    via: str | None = None
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # of the request (contextSourceInfo copies some)
    warnings: list[str] = field(default_factory=list)
