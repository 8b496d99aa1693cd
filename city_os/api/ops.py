"""Operations endpoints: ``/metrics`` (Prometheus), ``/health`` (liveness), ``/ready`` (readiness).

Layer: api/. HTTP only; what is measured and checked lives in observability/. The AppKeys of the
objects these handlers read are declared here, next to their only readers.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from city_os.api.keys import POOL
from city_os.events.relay import OutboxRelay
from city_os.notifier.service import Notifier
from city_os.observability.health import readiness
from city_os.observability.metrics import CONTENT_TYPE, Metrics

METRICS = web.AppKey("metrics", Metrics)
RELAY = web.AppKey("relay", OutboxRelay)
KAFKA_REQUIRED = web.AppKey("kafka_required", bool)
NOTIFIER = web.AppKey("notifier", Notifier)
NOTIFIER_REQUIRED = web.AppKey("notifier_required", bool)

routes = web.RouteTableDef()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    # prometheus-client's content type carries its own parameters; set the raw header.
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, dumps=_dumps)


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    app = request.app
    ok, body = await readiness(
        app.get(POOL),
        app.get(RELAY),
        app.get(NOTIFIER),
        kafka_required=app.get(KAFKA_REQUIRED, False),
        notifier_required=app.get(NOTIFIER_REQUIRED, False),
    )
    return web.json_response(body, status=200 if ok else 503, dumps=_dumps)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()
