"""Attribute values of the NGSIv2 API as bodies: ``/v2/entities/{id}/attrs/{attr}/value``.

Layer: ngsiv2/ (HTTP). Objects and arrays travel as application/json; numbers, booleans, null
and strings as text/plain (Orion's rules): on input, ``true``/``false``/``null``, a number, or a
string (in double quotes or bare). On output they are JSON unless the client prefers text/plain
(``Accept: text/plain``); then a string is written bare.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from city_os.api.http import JSON, negotiate, read_body, read_json
from city_os.errors import BadRequestData, NotAcceptable, UnsupportedMediaType
from city_os.ngsild.query.q import check_text

TEXT = "text/plain"


async def read_value(request: web.Request) -> Any:
    media = request.content_type.lower() if request.headers.get("Content-Type") else ""
    if media == JSON:
        value = await read_json(request, allowed=(JSON,))
        if not isinstance(value, dict | list):
            raise BadRequestData("an application/json value must be an object or an array")
        return value
    if media != TEXT:
        raise UnsupportedMediaType(f"Content-Type {media or '(none)'}: use text/plain or {JSON}")
    raw = (await read_body(request)).decode("utf-8", errors="strict").strip()
    if not raw:
        raise BadRequestData("the value is empty")
    if raw in ("true", "false", "null"):
        return orjson.loads(raw)
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return check_text(raw[1:-1], "value")
    try:
        number = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return check_text(raw, "value")
    if isinstance(number, int | float):
        return number
    raise BadRequestData("a text/plain value must be a number, a boolean, null or a string")


def value_response(request: web.Request, value: Any) -> web.Response:
    if isinstance(value, dict | list):
        negotiate(request, (JSON,))
        return web.Response(body=orjson.dumps(value), content_type=JSON)
    try:
        media = negotiate(request, (JSON, TEXT))
    except NotAcceptable:
        raise NotAcceptable("accepted MIME types: application/json, text/plain") from None
    if media == JSON:
        return web.Response(body=orjson.dumps(value), content_type=JSON)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return web.Response(text=text, content_type=TEXT)
