"""The OpenAPI 3.1 document of an application, generated from its router and the declarations.

Layer: openapi/. ``routes_of`` reads the (method, path template) of every route the router
serves (without the optional trailing slash ``add_routes`` appends); ``build`` renders the
declared operation of each, or a stub flagged ``x-cityos-undocumented`` for a route nobody
declared, so the document never omits a route; ``check_routes`` lists both kinds of mismatch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from city_os.openapi.components import SECURITY, components
from city_os.openapi.declare import Operation, Paths
from city_os.openapi.registry import TABLES

OPENAPI_VERSION = "3.1.0"
_SLASH = "{_slash}"
_IGNORED_METHODS = {"HEAD", "OPTIONS", "*"}


def routes_of(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, path template, handler name) of every route, in the router's order."""
    found: list[tuple[str, str, str]] = []
    for resource in app.router.resources():
        info = resource.get_info()
        path = str(info.get("formatter") or info.get("path") or "")
        path = path.removesuffix(_SLASH)
        for route in resource:
            if route.method in _IGNORED_METHODS:
                continue
            handler = route.handler
            name = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__name__', '?')}"
            found.append((route.method, path, name))
    return found


def declared(tables: Iterable[Paths] = TABLES) -> dict[tuple[str, str], Operation]:
    out: dict[tuple[str, str], Operation] = {}
    for table in tables:
        for operation in table:
            if operation.key in out:
                raise ValueError(f"{operation.method} {operation.path} is declared twice")
            out[operation.key] = operation
    return out


@dataclass(frozen=True)
class RouteCheck:
    undeclared: list[str]  # "METHOD path (handler)" of routes without a declaration
    unrouted: list[str]  # "METHOD path (operationId)" of declarations without a route

    def report(self) -> str:
        lines = []
        if self.undeclared:
            lines.append("routes missing from the OpenAPI document (declare them in a Paths")
            lines.append("table listed in city_os/openapi/registry.py):")
            lines += [f"  {r}" for r in self.undeclared]
        if self.unrouted:
            lines.append("operations in the OpenAPI document that no route serves:")
            lines += [f"  {r}" for r in self.unrouted]
        return "\n".join(lines)


def check_routes(app: web.Application, tables: Iterable[Paths] = TABLES) -> RouteCheck:
    operations = declared(tables)
    routes = routes_of(app)
    served = {(m, p) for m, p, _ in routes}
    undeclared = [f"{m} {p} ({h})" for m, p, h in routes if (m, p) not in operations]
    unrouted = [
        f"{op.method} {op.path} ({op.operation_id})"
        for key, op in operations.items()
        if key not in served
    ]
    return RouteCheck(undeclared, unrouted)


def _stub(method: str, path: str, handler: str) -> Operation:
    return Operation(method, path, handler.rsplit(".", 1)[-1], f"(undocumented: {handler})", "?")


def build(
    app: web.Application, tables: Iterable[Paths] = TABLES, *, version: str = "0.1.0"
) -> dict[str, Any]:
    operations = declared(tables)
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for method, path, handler in routes_of(app):
        operation = operations.get((method, path))
        rendered = (operation or _stub(method, path, handler)).render()
        if operation is None:
            rendered["x-cityos-undocumented"] = True
        tags.update(dict.fromkeys(rendered["tags"]))
        paths.setdefault(path, {})[method.lower()] = rendered
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "city-os",
            "version": version,
            "summary": "NGSI-LD context broker (ETSI GS CIM 009 v1.9.1) with city-os extensions",
            "description": "Every 4xx answer is a ProblemDetails (§5.5.2), except on the "
            "NGSIv2 face (/v2, /version, /statistics): Orion's {error, description}. "
            "Operations marked x-cityos-extension are not part of NGSI-LD.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": SECURITY,
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": components(),
    }
