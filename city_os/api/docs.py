"""The API contract over HTTP: ``/openapi.json`` and a readable page at ``/docs``.

Layer: api/. The document is built from this application's router by ``city_os.openapi`` on the
first request and kept for the app's life (routes do not change once the app runs). The page is
Swagger UI from the pinned ``swagger-ui-py`` package, served from the installed files: no CDN.
"""

from __future__ import annotations

import mimetypes
from importlib import metadata, resources
from typing import Any

import orjson
from aiohttp import web

from city_os.errors import ResourceNotFound
from city_os.openapi.document import build

DOCUMENT = web.AppKey("openapi_document", dict)
_ASSETS = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>city-os API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head><body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""
_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"});
};
"""

routes = web.RouteTableDef()


def install(app: web.Application) -> None:
    """Give ``app`` the place where its document is kept once built."""
    app[DOCUMENT] = {}


def document(app: web.Application) -> bytes:
    cache: dict[str, Any] = app[DOCUMENT]
    if "body" not in cache:
        cache["body"] = orjson.dumps(build(app, version=metadata.version("city-os")))
    body: bytes = cache["body"]
    return body


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=document(request.app), content_type="application/json")


@routes.get("/docs")
async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")


@routes.get("/docs/{asset}")
async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name == "init.js":
        return web.Response(text=_INIT, content_type="text/javascript")
    if name not in _ASSETS:
        raise ResourceNotFound(f"the documentation page has no file {name!r}")
    body = (resources.files("swagger_ui") / "static" / name).read_bytes()
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(body=body, content_type=media, headers={"Cache-Control": "max-age=86400"})
