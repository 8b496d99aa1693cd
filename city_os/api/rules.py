"""The route-rule middleware: applies ``auth/rules.py`` to every request before its handler.

Layer: api/. With authentication off (an unrestricted principal) it does nothing. Otherwise the
matched route's rule is looked up by method and canonical path: a route without a rule is
refused (403; a test keeps the table complete, so this only guards against a forgotten entry),
a tenant rule is decided here (401 for an anonymous caller, 403 for one without the right) in
the tenant the handler will act in, and every other rule is left to the service it names.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from city_os.api.guard import principal_of
from city_os.api.http import tenant_of
from city_os.auth.rules import RULES, Tenant, allowed
from city_os.errors import AccessDenied, Unauthorized
from city_os.ngsiv2.http import tenant as v2_tenant
from city_os.ngsiv2.routes import PREFIXES as V2_PREFIXES


def route_key(method: str, canonical: str) -> tuple[str, str]:
    """A route's key in ``RULES``: HEAD is GET's, the optional trailing slash is not part."""
    return ("GET" if method == "HEAD" else method), canonical.replace("{_slash}", "")


def _tenant(request: web.Request) -> str:
    """The tenant a request acts in: ``Fiware-Service`` on the NGSIv2 face (its handlers use
    nothing else, so ``NGSILD-Tenant`` there must not decide), else ``NGSILD-Tenant``."""
    if request.path.startswith(V2_PREFIXES):
        return v2_tenant(request)
    return tenant_of(request)


@web.middleware
async def route_rules(request: web.Request, handler: Handler) -> web.StreamResponse:
    principal = principal_of(request)
    resource = request.match_info.route.resource
    if principal.unrestricted or resource is None:  # None: 404/405 answers of the router
        return await handler(request)
    rule = RULES.get(route_key(request.method, resource.canonical))
    if rule is None:
        raise AccessDenied(f"no access rule is declared for {request.method} {resource.canonical}")
    if isinstance(rule, Tenant):
        decision = allowed(principal, _tenant(request), rule)
        if not decision:
            if principal.anonymous:
                raise Unauthorized(f"sign in first: {decision.reason}", error=None)
            raise AccessDenied(decision.reason)
    return await handler(request)
