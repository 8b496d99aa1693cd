"""Typed application keys: where create_app stores the objects its handlers share."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from city_os.config import Settings
from city_os.core.contexts import ContextLoader
from city_os.core.entities import EntityService
from city_os.store.postgres.db import Tenants

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
TENANTS = web.AppKey("tenants", Tenants)
CONTEXTS = web.AppKey("contexts", ContextLoader)
ENTITIES = web.AppKey("entities", EntityService)
