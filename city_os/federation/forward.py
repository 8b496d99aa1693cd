"""Forwarding of entity writes to context sources (§4.3.6.2-4.3.6.5, §5.6 distributed behaviour).

Layer: federation/. Before a create, update, append, merge, replace or delete runs locally, the
registrations of the entity that serve the operation are asked for: the write is split by
attribute and sent, in parallel, to every matching source —

* inclusive: the source gets its part and the broker keeps the whole (data is added, not moved);
* exclusive: the source gets the attributes it registered, which are left out locally;
* redirect: the same, and when the source registered the whole entity nothing is written locally;
* auxiliary: never written to (§4.3.6.5).

Each source's answer becomes a ``Forwarded`` entry; a source that fails never undoes the
others or the local write, it is reported (the API answers 207 naming each source). Invalid
input is refused before anything is forwarded, since the local parse runs first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from city_os.core.request import RequestContext
from city_os.federation.client import SourceAnswer
from city_os.federation.distributed import Federation, target
from city_os.federation.distributed_request import Source
from city_os.ngsild.entity import ENTITY_MEMBERS, expand_attr_name

_BODY_MEMBERS = frozenset({*ENTITY_MEMBERS, "@context"})


@dataclass
class Forwarded:
    """What happened to one write at the sources."""

    answers: list[SourceAnswer] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)  # attribute IRIs sources took from the broker
    all_owned: bool = False  # a redirect/exclusive source took the whole entity

    @property
    def forwarded(self) -> bool:
        return bool(self.answers)

    @property
    def any_ok(self) -> bool:
        return any(a.ok for a in self.answers)

    @property
    def failures(self) -> list[SourceAnswer]:
        return [a for a in self.answers if not a.ok]

    def strip(self, ctx: RequestContext, body: Any) -> Any:
        """The part of ``body`` that stays local (owned attributes removed)."""
        if not self.owned or not isinstance(body, dict):
            return body
        return {
            k: v
            for k, v in body.items()
            if k in _BODY_MEMBERS or expand_attr_name(ctx.terms, k) not in self.owned
        }

    def report(self) -> dict[str, Any]:
        """The 207 body: what each source answered."""
        return {
            "success": [
                {"registrationId": a.target.registration, "endpoint": a.target.endpoint}
                for a in self.answers
                if a.ok
            ],
            "errors": [
                {
                    "registrationId": a.target.registration,
                    "endpoint": a.target.endpoint,
                    "error": {
                        "type": "https://uri.etsi.org/ngsi-ld/errors/"
                        + ("GatewayTimeout" if a.timed_out else "BadGateway"),
                        "title": "Context source failed",
                        "status": a.status or (504 if a.timed_out else 502),
                        "detail": a.error,
                    },
                }
                for a in self.failures
            ],
        }


def _attr_names(ctx: RequestContext, body: Any) -> dict[str, str]:
    """Compact name → IRI of the attributes in a body."""
    if not isinstance(body, dict):
        return {}
    return {k: expand_attr_name(ctx.terms, k) for k in body if k not in _BODY_MEMBERS}


def _part(body: dict[str, Any], names: dict[str, str], held: frozenset[str] | None) -> Any:
    if held is None:
        return body
    return {
        k: v for k, v in body.items() if k in _BODY_MEMBERS or (k in names and names[k] in held)
    }


@dataclass
class WritePlan:
    """The sources one write goes to, found before anything is written."""

    sources: list[Source]
    names: dict[str, str]  # compact attribute name in the body → IRI
    result: Forwarded


async def plan_write(
    federation: Federation,
    ctx: RequestContext,
    operation: str,
    entity_id: str,
    *,
    body: Any = None,
    types: Iterable[str] | None = None,
    attr: str | None = None,
) -> WritePlan:
    """The sources of the write (``attr``: the one attribute, IRI, an attribute-level
    operation names); ``result.owned``/``all_owned`` say what must not be written locally."""
    names = _attr_names(ctx, body)
    attrs = [attr] if attr else list(names.values())
    kinds = list(types) if types else None
    found = await federation.sources(ctx, operation, attrs=attrs, entity_id=entity_id, types=kinds)
    plan = WritePlan([s for s in found if s.origin != "auxiliary"], names, Forwarded())
    for source in plan.sources:
        _own(plan.result, source)
    return plan


async def send_write(
    federation: Federation,
    ctx: RequestContext,
    plan: WritePlan,
    operation: str,
    method: str,
    entity_id: str,
    *,
    path: str = "",
    body: Any = None,
) -> Forwarded:
    """Send the write to the planned sources; ``path`` is below /entities/{id} (the create
    goes to /entities)."""
    out = plan.result
    if not plan.sources:
        return out
    url = (
        "/entities"
        if operation == "createEntity"
        else "/entities/" + quote(entity_id, safe=":") + path
    )
    calls = [
        federation.client.call(
            target(source.registration),
            method,
            url,
            operation=operation,
            params=_params(ctx),
            body=_part(body, plan.names, source.attrs) if isinstance(body, dict) else body,
            context=ctx.context,
            via=federation.via(ctx),
            incoming=ctx.headers,
        )
        for source in plan.sources
    ]
    out.answers = list(await asyncio.gather(*calls))
    return out


def _own(out: Forwarded, source: Source) -> None:
    if source.origin not in ("exclusive", "redirect"):
        return
    if source.attrs is None:
        out.all_owned = out.all_owned or source.origin == "redirect"
        return
    out.owned |= source.attrs


def _params(ctx: RequestContext) -> list[tuple[str, str]]:
    return [(k, v) for k, v in ctx.params if k in ("type", "datasetId", "deleteAll", "options")]
