"""The NGSIv2 API's route tables and the URL prefixes whose errors are Orion-style.

Layer: ngsiv2/ (HTTP). ``create_app`` registers these tables next to the NGSI-LD ones.
"""

from __future__ import annotations

from city_os.ngsiv2 import entities, ops
from city_os.ngsiv2.http import orion_error

TABLES = (entities.routes, ops.routes)
PREFIXES = ("/v2", "/version", "/statistics")

__all__ = ["PREFIXES", "TABLES", "orion_error"]
