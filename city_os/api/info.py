"""Context source identity (§5.15, §6.32): GET /ngsi-ld/v1/info/sourceIdentity.

Layer: api/. The alias names this broker AND the tenant asked about, so federated peers can tell
two tenants of one broker apart (Table 5.2.40-1).
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from city_os.api.http import JSON, JSONLD, json_response, negotiate, tenant_of
from city_os.api.keys import SETTINGS, STARTED
from city_os.ngsild.entity import now_iso

routes = web.RouteTableDef()


def iso_duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - int(seconds)
    return f"P{days}DT{hours}H{minutes}M{secs + frac:.3f}S"


@routes.get("/ngsi-ld/v1/info/sourceIdentity")
async def source_identity(request: web.Request) -> web.Response:
    negotiate(request, (JSON, JSONLD))
    broker = hashlib.sha256(request.app[SETTINGS].base_url.encode()).hexdigest()[:16]
    tenant = tenant_of(request)
    alias = f"urn:ngsi-ld:ContextSource:city-os-{broker}"
    if tenant:
        alias += ":" + hashlib.sha256(tenant.encode()).hexdigest()[:16]
    body = {
        "id": f"urn:ngsi-ld:ContextSourceIdentity:city-os-{broker}",
        "type": "ContextSourceIdentity",
        "contextSourceAlias": alias,
        "contextSourceUptime": iso_duration(time.monotonic() - request.app[STARTED]),
        "contextSourceTimeAt": now_iso(),
        "contextSourceExtras": {"product": "city-os"},
    }
    return json_response(body)
