"""The audit log resource, and the note of each refused decision the API answers.

Layer: api/ (HTTP only). ``GET /cityos/v1/audit`` lists the tenant's audit log for its admins
(``auth/audit.py`` decides), newest first, filtered by ``action`` (``access.`` — a trailing dot
— matches a family), ``actor``, ``resource`` and ``since``, paged by ``limit``/``offset``.
``note_refusal`` is the access guard's ``on_refused`` hook (api/guard.py; create_app wires it):
it gets every 401 and 403 a request ends with, so refusals raised anywhere (authentication, a
tenant rule, core/, a service) are audited once.
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import json_response, tenant_of
from city_os.api.keys import AUDIT
from city_os.auth.consent import page
from city_os.auth.principal import Principal
from city_os.errors import AccessDenied, BadRequestData, NgsiLdError, Unauthorized
from city_os.ngsild.entity import parse_datetime

routes = web.RouteTableDef()
# The NGSIv2 face names its tenant in Fiware-Service (ngsiv2/http.py; api/rules.py validates
# it — here it only labels an audit entry; importing the v2 face here would be circular).
_V2_PREFIXES = ("/v2", "/version", "/statistics")


def acting_tenant(request: web.Request) -> str:
    if request.path.startswith(_V2_PREFIXES):
        return request.headers.get("Fiware-Service", "").strip().lower()
    return tenant_of(request)


def note_refusal(request: web.Request, principal: Principal, err: NgsiLdError) -> None:
    """Audit a 401 or 403 (other errors are not decisions of access control)."""
    if not isinstance(err, Unauthorized | AccessDenied):
        return
    service = request.app.get(AUDIT)
    if service is None:
        return
    resource = f"{request.method} {request.path}"
    service.trail.refused(principal, acting_tenant(request), resource, err.status, err.detail)


@routes.get("/cityos/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    q = request.query
    limit, offset = page(q.get("limit", "100"), q.get("offset", "0"))
    since = None
    if "since" in q:
        try:
            since = parse_datetime(q["since"])
        except ValueError:
            raise BadRequestData(f"since is not a date-time: {q['since']!r}") from None
    entries = await request.app[AUDIT].entries(
        principal_of(request),
        tenant_of(request),
        action=q.get("action"),
        actor=q.get("actor"),
        resource=q.get("resource"),
        since=since,
        limit=limit,
        offset=offset,
    )
    return json_response(entries)
