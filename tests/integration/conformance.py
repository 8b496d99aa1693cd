"""Check a real response against the OpenAPI document the app serves (/openapi.json).

``conforms`` finds the operation of (method, path template), the response declared for the
status (or its 4XX/5XX range), and validates the content type and the JSON body with the
schema, ``$ref``s resolved inside the document and formats (date-time, uri) checked.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from jsonschema import Draft202012Validator

Document = dict[str, Any]


def _resolve(doc: Document, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/", 2)
        node = doc[section][kind][name]
    return node


def declared_response(doc: Document, method: str, template: str, status: int) -> dict[str, Any]:
    responses = doc["paths"][template][method.lower()]["responses"]
    for key in (str(status), f"{str(status)[0]}XX"):
        if key in responses:
            return _resolve(doc, responses[key])
    raise AssertionError(f"{method} {template}: status {status} is not declared")


async def conforms(doc: Document, method: str, template: str, resp: ClientResponse) -> Any:
    """The JSON body (or text) of ``resp`` once checked against the document; fails naming
    the member that does not conform."""
    declared = declared_response(doc, method, template, resp.status)
    content = declared.get("content")
    raw = await resp.read()
    if not content:
        assert not raw, f"{method} {template} {resp.status}: a body where none is declared"
        return None
    media = resp.content_type
    assert media in content, f"{method} {template} {resp.status}: {media} not in {list(content)}"
    if not media.endswith("json"):
        return raw.decode()
    body = await resp.json(content_type=None)
    schema = {**content[media]["schema"], "components": doc["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {template} {resp.status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]
    )
    return body


async def document(client: Any) -> Document:
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc: Document = await resp.json()
    return doc
