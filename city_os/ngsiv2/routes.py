"""The NGSIv2 API's route tables and the URL prefixes whose errors are Orion-style.

Layer: ngsiv2/ (HTTP). ``create_app`` registers these tables next to the NGSI-LD ones.
"""

from __future__ import annotations

from city_os.ngsiv2 import entities, notify, ops, registrations, subscriptions_api
from city_os.ngsiv2.http import orion_error
from city_os.ngsiv2.subscriptions import FACE_NAME
from city_os.notifier.render import Face

TABLES = (entities.routes, ops.routes, subscriptions_api.routes, registrations.routes)
# The notifier renders the notifications of v2 subscriptions with this face.
FACES: dict[str, Face] = {FACE_NAME: notify.render}
PREFIXES = ("/v2", "/version", "/statistics")

__all__ = ["FACES", "PREFIXES", "TABLES", "orion_error"]
