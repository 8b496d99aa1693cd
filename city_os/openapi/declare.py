"""Per-route declarations: what a room tells the OpenAPI document about each of its routes.

Layer: openapi/. A room makes one ``Paths`` table and declares each route in a line or three:

    paths = Paths("Temporal", prefix="/ngsi-ld/v1/temporal")
    paths.get("/entities", "queryTemporalEntities", "Query temporal evolution of entities",
              params=("q", "timerel", "timeAt"), replies=(ok(ref("TemporalEntity"), many=True),))

then adds ``paths`` to ``registry.TABLES``. Parameters, schemas and headers are named by their
component (``components.py``); path parameters come from the path template. Every operation
answers ProblemDetails for 4XX and 503/504 without saying so. Another API face (NGSIv2) sets
``face="v2."``: its path parameters and error responses are the components of that prefix
(``v2.path.entityId``, ``v2.4XX``), its own error bodies instead of ProblemDetails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
JSON_MEDIA = (JSON, JSONLD)
Schema = dict[str, Any]
_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def ref(name: str) -> Schema:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


@dataclass(frozen=True)
class Reply:
    """One documented response: a status, and its body (``schema``) in each of ``media``."""

    status: int
    description: str
    schema: Schema | None = None
    media: tuple[str, ...] = JSON_MEDIA
    headers: tuple[str, ...] = ()  # names in components.headers
    other_media: tuple[tuple[str, Schema], ...] = ()  # media whose body has another schema

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.schema is not None:
            out["content"] = {m: {"schema": self.schema} for m in self.media}
        if self.other_media:
            out.setdefault("content", {}).update({m: {"schema": s} for m, s in self.other_media})
        if self.headers:
            out["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in self.headers}
        return out


def ok(
    schema: Schema | None = None,
    description: str = "OK",
    *,
    status: int = 200,
    media: tuple[str, ...] = JSON_MEDIA,
    headers: tuple[str, ...] = (),
    other_media: tuple[tuple[str, Schema], ...] = (),
) -> Reply:
    return Reply(status, description, schema, media, headers, other_media)


def created(description: str = "Created; Location names the new resource") -> Reply:
    return Reply(201, description, headers=("Location",))


def no_content(description: str = "Done") -> Reply:
    return Reply(204, description)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    params: tuple[str, ...] = ()  # names in components.parameters
    body: Schema | None = None
    body_media: tuple[str, ...] = JSON_MEDIA
    replies: tuple[Reply, ...] = ()
    description: str = ""
    extension: bool = False  # a city-os extension, not in ETSI GS CIM 009
    errors: tuple[int, ...] = ()  # 4xx statuses worth naming (all 4XX are ProblemDetails)
    face: str = ""  # prefix of the path parameter and error response components
    body_by_media: tuple[tuple[str, Schema], ...] = ()  # a body whose schema differs by media

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    def render(self) -> dict[str, Any]:
        face = self.face
        params = [{"$ref": f"#/components/parameters/{face}path.{p}"} for p in self.path_params()]
        params += [{"$ref": f"#/components/parameters/{p}"} for p in self.params]
        responses = {str(r.status): r.render() for r in self.replies}
        for status in self.errors:
            responses.setdefault(str(status), {"$ref": f"#/components/responses/{face}{status}"})
        responses.setdefault("4XX", {"$ref": f"#/components/responses/{face}4XX"})
        responses.setdefault("503", {"$ref": f"#/components/responses/{face}503"})
        if face or any(p in ("Link", "NGSILD-Tenant") for p in self.params):
            responses.setdefault("504", {"$ref": f"#/components/responses/{face}504"})
        out: dict[str, Any] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
            "parameters": params,
            "responses": responses,
        }
        if self.description:
            out["description"] = self.description
        if self.body_by_media:
            content = {m: {"schema": schema} for m, schema in self.body_by_media}
            out["requestBody"] = {"required": True, "content": content}
        elif self.body is not None:
            out["requestBody"] = {
                "required": True,
                "content": {m: {"schema": self.body} for m in self.body_media},
            }
        if self.extension:
            out["x-cityos-extension"] = True
        return out


@dataclass
class Paths:
    """The declarations of one room. ``common`` parameters are added to every operation."""

    tag: str
    prefix: str = ""
    extension: bool = False
    common: tuple[str, ...] = ("Link", "NGSILD-Tenant")
    face: str = ""
    operations: list[Operation] = field(default_factory=list)

    def add(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        *,
        params: tuple[str, ...] = (),
        body: Schema | None = None,
        body_media: tuple[str, ...] = JSON_MEDIA,
        replies: tuple[Reply, ...] = (),
        description: str = "",
        errors: tuple[int, ...] = (),
        common: tuple[str, ...] | None = None,
        body_by_media: tuple[tuple[str, Schema], ...] = (),
    ) -> Operation:
        operation = Operation(
            method=method,
            path=self.prefix + path,
            operation_id=operation_id,
            summary=summary,
            tag=self.tag,
            params=(*(self.common if common is None else common), *params),
            body=body,
            body_media=body_media,
            replies=replies,
            description=description,
            extension=self.extension,
            errors=errors,
            face=self.face,
            body_by_media=body_by_media,
        )
        self.operations.append(operation)
        return operation

    def get(self, path: str, operation_id: str, summary: str, **kw: Any) -> Operation:
        return self.add("GET", path, operation_id, summary, **kw)

    def post(self, path: str, operation_id: str, summary: str, **kw: Any) -> Operation:
        return self.add("POST", path, operation_id, summary, **kw)

    def put(self, path: str, operation_id: str, summary: str, **kw: Any) -> Operation:
        return self.add("PUT", path, operation_id, summary, **kw)

    def patch(self, path: str, operation_id: str, summary: str, **kw: Any) -> Operation:
        return self.add("PATCH", path, operation_id, summary, **kw)

    def delete(self, path: str, operation_id: str, summary: str, **kw: Any) -> Operation:
        return self.add("DELETE", path, operation_id, summary, **kw)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)
