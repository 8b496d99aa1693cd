"""Typed application keys: where create_app stores the objects its handlers share."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from city_os.auth.apikeys import ApiKeys
from city_os.auth.audit import AuditService
from city_os.auth.consent import ConsentService
from city_os.auth.permissions import PermissionService
from city_os.auth.principal import Principal
from city_os.config import Settings
from city_os.core.context_registry import ContextRegistry
from city_os.core.contexts import ContextLoader
from city_os.core.discovery import DiscoveryService
from city_os.core.entities import EntityService
from city_os.core.indexes import ValueIndexService
from city_os.core.query import QueryService
from city_os.core.streams import StreamHub
from city_os.core.subscriptions import SubscriptionService
from city_os.federation.index import RegistrationIndex
from city_os.federation.registrations import RegistrationService
from city_os.registry.service import SchemaRegistry
from city_os.store.postgres.db import Tenants
from city_os.temporal.service import TemporalService

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
TENANTS = web.AppKey("tenants", Tenants)
CONTEXTS = web.AppKey("contexts", ContextLoader)
CONTEXT_REGISTRY = web.AppKey("context_registry", ContextRegistry)
ENTITIES = web.AppKey("entities", EntityService)
SCHEMAS = web.AppKey("schemas", SchemaRegistry)
QUERIES = web.AppKey("queries", QueryService)
INDEXES = web.AppKey("indexes", ValueIndexService)
DISCOVERY = web.AppKey("discovery", DiscoveryService)
SUBSCRIPTIONS = web.AppKey("subscriptions", SubscriptionService)
# /csourceSubscriptions (§5.11): the same service for the other kind of subscription.
CSOURCE_SUBSCRIPTIONS = web.AppKey("csource_subscriptions", SubscriptionService)
STREAMS = web.AppKey("streams", StreamHub)
TEMPORAL = web.AppKey("temporal", TemporalService)
REGISTRATIONS = web.AppKey("registrations", RegistrationService)
# The per-replica index of context source registrations (federation/index.py).
REGISTRATION_INDEX = web.AppKey("registration_index", RegistrationIndex)
STARTED = web.AppKey("started", float)  # time.monotonic() at start-up
API_KEYS = web.AppKey("api_keys", ApiKeys)
CONSENTS = web.AppKey("consents", ConsentService)
PERMISSIONS = web.AppKey("permissions", PermissionService)
AUDIT = web.AppKey("audit", AuditService)
PRINCIPAL = web.RequestKey("principal", Principal)  # set on every request by api/guard.py
