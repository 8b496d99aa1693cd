"""The list of every room's ``Paths`` tables: the only place a new room is added.

Layer: openapi/. A room (temporal/, ngsiv2/, …) declares its routes in its own module and adds
its tables here in one line; ``tests/unit/openapi`` then proves each route of the app is
declared and each declaration has a route.
"""

from __future__ import annotations

from city_os.federation import entitymap_openapi as entitymaps
from city_os.federation import openapi as federation
from city_os.ngsiv2 import openapi as ngsiv2
from city_os.openapi import cityos, ngsild
from city_os.openapi.declare import Paths
from city_os.snapshots import openapi as snapshots
from city_os.temporal import openapi as temporal

TABLES: tuple[Paths, ...] = (
    *ngsild.TABLES, *temporal.TABLES, *federation.TABLES, *entitymaps.TABLES,
    *ngsiv2.TABLES, *snapshots.TABLES, *cityos.TABLES
)  # fmt: skip
