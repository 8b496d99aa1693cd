"""Forwarding of entity writes to context sources (§4.3.6.2-4.3.6.5, §5.6.x.4 distributed ops).

Layer: federation/. Before a create, update, append, merge, replace or delete runs locally, the
registrations of the entity are looked up: the write is split by attribute and sent, in
parallel, to every matching source that serves the operation —

* inclusive: the source gets its part and the broker keeps the whole (data is added, not moved);
* exclusive: the source gets the attributes it registered, which are left out locally;
* redirect: the same, and when the source registered the whole entity nothing is written locally;
* auxiliary: never written to (§4.3.6.5).

An exclusive or redirect registration that covers part of the write but does not serve the
operation blocks that part: it is written nowhere and reported as a Conflict; when it blocks
the whole write, the request is refused with 409 and nothing is forwarded or written.

Every place's outcome (the local write and each source's answer) is kept in ``Forwarded``: when
anything failed — a source's error, timeout or 207, a local 404/409 — the API answers 207
naming each place. Invalid input is refused before anything is forwarded (the local parse runs
first whenever a local part exists).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

from city_os.core.request import RequestContext
from city_os.errors import NgsiLdError
from city_os.federation.client import SourceAnswer
from city_os.federation.distributed import Federation, target
from city_os.federation.distributed_request import Source
from city_os.federation.model import Registration
from city_os.ngsild.entity import ENTITY_MEMBERS, expand_attr_name

_BODY_MEMBERS = frozenset({*ENTITY_MEMBERS, "@context"})
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
OWNERS = ("exclusive", "redirect")


class Conflict(NgsiLdError):
    """A write covered by an exclusive/redirect registration whose source does not take it."""

    type_uri: ClassVar[str] = ERRORS + "Conflict"
    status: ClassVar[int] = 409
    title: ClassVar[str] = "Conflict"


@dataclass
class Forwarded:
    """What happened to one write, place by place."""

    entity_id: str
    answers: list[SourceAnswer] = field(default_factory=list)
    owned: set[str] = field(default_factory=set)  # attribute IRIs the sources took
    all_owned: bool = False  # a redirect source took the whole entity
    blocked: list[Registration] = field(default_factory=list)  # cover it, do not serve it
    blocked_attrs: set[str] = field(default_factory=set)
    all_blocked: bool = False
    local_error: NgsiLdError | None = None

    @property
    def any_ok(self) -> bool:
        return any(a.ok for a in self.answers)

    @property
    def failures(self) -> list[SourceAnswer]:
        return [a for a in self.answers if not a.ok or a.status == 207]

    @property
    def partial(self) -> bool:
        return bool(self.failures or self.blocked or self.local_error)

    def strip(self, ctx: RequestContext, body: Any) -> Any:
        """The part of ``body`` that stays local (owned and blocked attributes removed)."""
        gone = self.owned | self.blocked_attrs
        if not gone or not isinstance(body, dict):
            return body
        return {
            k: v
            for k, v in body.items()
            if k in _BODY_MEMBERS or expand_attr_name(ctx.terms, k) not in gone
        }

    def report(self) -> dict[str, Any]:
        """The 207 body: the places that took the write and those that did not, why."""
        success: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        if self.local_error is None:
            success.append({"entityId": self.entity_id, "local": True})
        else:
            errors.append(
                {"entityId": self.entity_id, "local": True, "error": self.local_error.problem()}
            )
        for a in self.answers:
            place = {"registrationId": a.target.registration, "endpoint": a.target.endpoint}
            if a.ok and a.status != 207:
                success.append({"entityId": self.entity_id, **place})
                continue
            detail = a.error or "the context source answered 207: only partly done"
            errors.append({"entityId": self.entity_id, **place, "error": _problem(a, detail)})
        for reg in self.blocked:
            errors.append(
                {
                    "entityId": self.entity_id,
                    "registrationId": reg.id,
                    "endpoint": reg.endpoint,
                    "error": Conflict(
                        f"registration {reg.id} ({reg.mode}) holds this data but its source "
                        "does not take this operation"
                    ).problem(),
                }
            )
        return {"success": success, "errors": errors}


def _problem(answer: SourceAnswer, detail: str) -> dict[str, Any]:
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("type"), str) and answer.status != 207:
        return {**body, "status": body.get("status", answer.status)}
    kind = "GatewayTimeout" if answer.timed_out else "BadGateway"
    return {
        "type": ERRORS + kind,
        "title": "Context source failed",
        "status": answer.status or (504 if answer.timed_out else 502),
        "detail": detail,
    }


@dataclass
class WritePlan:
    """The sources one write goes to, found before anything is written."""

    sources: list[Source]
    names: dict[str, str]  # compact attribute name in the body → IRI
    result: Forwarded
    attr: str | None = None  # the one attribute an attribute-level operation names

    @property
    def local_part(self) -> bool:
        """Whether anything is left to write locally."""
        fw = self.result
        if fw.all_owned or fw.all_blocked:
            return False
        gone = fw.owned | fw.blocked_attrs
        if self.attr is not None:
            return self.attr not in gone
        return not self.names or any(iri not in gone for iri in self.names.values())


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
    operation names); raises Conflict when registrations that do not take the operation
    cover all of it."""
    names = _attr_names(ctx, body)
    attrs = [attr] if attr else list(names.values())
    kinds = list(types) if types else None
    found = await federation.sources(ctx, operation, attrs=attrs, entity_id=entity_id, types=kinds)
    plan = WritePlan(
        [s for s in found if s.origin != "auxiliary"], names, Forwarded(entity_id), attr
    )
    for source in plan.sources:
        _own(plan.result, source)
    serving = {s.registration.id for s in plan.sources}
    _block(federation, ctx, plan, operation, entity_id, kinds, attrs, serving)
    if plan.result.blocked and not plan.sources and not plan.local_part:
        reg = plan.result.blocked[0]
        raise Conflict(
            f"registration {reg.id} ({reg.mode}) holds this data, and its source at "
            f"{reg.endpoint} does not take {operation}"
        )
    return plan


def _block(
    federation: Federation,
    ctx: RequestContext,
    plan: WritePlan,
    operation: str,
    entity_id: str,
    kinds: list[str] | None,
    attrs: list[str],
    serving: set[str],
) -> None:
    now = datetime.now(UTC)
    for reg in federation.index.registrations(ctx.tenant):
        if reg.id in serving or reg.mode not in OWNERS or reg.serves(operation):
            continue
        if reg.expired(now) or not reg.covers(entity_id, kinds, attrs or None):
            continue
        held = reg.registered_attrs(entity_id, kinds)
        plan.result.blocked.append(reg)
        if held is None:
            plan.result.all_blocked = plan.result.all_blocked or reg.mode == "redirect"
            plan.result.blocked_attrs |= set(attrs)
        else:
            plan.result.blocked_attrs |= held & set(attrs) if attrs else held


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
    if source.origin not in OWNERS:
        return
    if source.attrs is None:
        out.all_owned = out.all_owned or source.origin == "redirect"
        return
    out.owned |= source.attrs


def _params(ctx: RequestContext) -> list[tuple[str, str]]:
    return [(k, v) for k, v in ctx.params if k in ("type", "datasetId", "deleteAll", "options")]


async def forward_purge(
    federation: Federation, ctx: RequestContext, types: list[str] | None
) -> Forwarded:
    """A purge (DELETE /entities?…, §5.6.21) sent on to the sources that take deletes of
    the selected entities, with the client's selection (its query parameters)."""
    out = Forwarded("")
    if ("local", "true") in ctx.params:
        return out
    sources = await federation.sources(ctx, ("deleteEntity", "deleteBatch"), types=types)
    calls = [
        federation.client.call(
            target(source.registration),
            "DELETE",
            "/entities",
            operation="purgeEntities",
            params=[(k, v) for k, v in ctx.params if k not in ("local", "csf")],
            context=ctx.context,
            via=federation.via(ctx),
            incoming=ctx.headers,
        )
        for source in sources
        if source.origin != "auxiliary"
    ]
    out.answers = list(await asyncio.gather(*calls))
    return out
