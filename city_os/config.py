"""Settings: the only reader of ``os.environ``. Read once at start-up, frozen afterwards.

Every ``CITYOS_*`` variable is declared in ``SETTINGS`` with its default and meaning; the README's
settings table is checked against it by a test.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from city_os.ngsild.limits import Limits


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 1026
    workers: int = 1  # 0 = one per CPU core
    database_url: str = "postgresql://postgres@127.0.0.1:5432/cityos"
    db_pool_min: int = 2
    db_pool_max: int = 16
    db_acquire_timeout: float = 5.0
    db_retry_after: int = 2
    public_url: str = ""  # base URL clients see; "" = http://{host}:{port}
    kafka_bootstrap: str = ""  # "" = no Kafka (relay off); make run starts local Tansu
    kafka_topic: str = "cityos.entity-changes"
    kafka_idempotence: bool = False
    relay_enabled: bool = True
    relay_batch_size: int = 500
    relay_poll_interval: float = 1.0
    kafka_publish_timeout: float = 10.0
    kafka_max_message_bytes: int = 1_000_000
    outbox_retention: float = 86400.0
    max_body_bytes: int = 2 * 1024 * 1024
    body_read_timeout: float = 10.0
    max_batch_entities: int = 1000
    max_json_depth: int = 32
    max_json_containers: int = 120_000
    max_attributes: int = 1000
    max_entity_types: int = 32
    max_id_bytes: int = 1024
    max_name_bytes: int = 512
    max_order_by_keys: int = 16
    max_query_selectors: int = 100
    max_join_level: int = 16
    default_page_size: int = 20
    max_page_size: int = 1000
    context_fetch_timeout: float = 5.0
    context_max_bytes: int = 512 * 1024
    context_cache_ttl: float = 3600.0
    context_resolve_timeout: float = 10.0
    context_connections_per_host: int = 4
    context_cache_bytes: int = 64 * 1024 * 1024
    context_cache_entries: int = 1024
    expiry_interval: float = 1.0
    temporal_max_instances: int = 10_000
    temporal_maintenance_interval: float = 3600.0
    notifier_enabled: bool = True
    notifier_group_id: str = "city-os-notifier"
    notifier_batch_size: int = 500
    notifier_fetch_wait: float = 0.01
    notifier_timeout: float = 10.0
    notifier_concurrency: int = 8
    notifier_queue_size: int = 10_000
    notifier_retry_horizon: float = 3600.0
    notifier_retry_max_delay: float = 60.0
    notifier_lease: float = 15.0
    notifier_retention: float = 3600.0
    webpush_subject: str = "mailto:admin@city-os.invalid"
    stream_retention: float = 600.0
    log_level: str = "INFO"
    auth_enabled: bool = False
    auth_insecure: bool = False
    oidc_issuers: str = ""  # JSON list of issuers (auth/issuers.py)
    oidc_clock_skew: float = 30.0
    oidc_jwks_ttl: float = 3600.0
    oidc_refresh_interval: float = 30.0
    rate_limit: float = 0.0  # requests per second per client; 0 = no limit
    rate_limit_burst: int = 100
    outbound_allow: str = ""  # "loopback", "private", CIDRs; "" = public addresses only
    federation_timeout: float = 5.0  # seconds; a registration's management.timeout overrides
    federation_concurrency: int = 32
    federation_connections_per_host: int = 8
    access_log_retention_days: int = 400
    owner_roles_grace_hours: float = 168.0
    ngsiv2_context: str = ""  # @context URL of the NGSIv2 API; "" = the NGSI-LD core context

    @functools.cached_property
    def limits(self) -> Limits:
        return Limits(
            json_depth=self.max_json_depth,
            json_containers=self.max_json_containers,
            attributes=self.max_attributes,
            entity_types=self.max_entity_types,
            id_bytes=self.max_id_bytes,
            name_bytes=self.max_name_bytes,
            order_by_keys=self.max_order_by_keys,
            query_selectors=self.max_query_selectors,
            join_level=self.max_join_level,
        )

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("CITYOS_" + f.name.upper())
            if raw is None:
                continue
            kind: Any = type(f.default)
            try:
                if kind is bool:
                    values[f.name] = _parse_bool(raw)
                else:
                    values[f.name] = kind(raw)
            except ValueError as exc:
                raise SystemExit(f"CITYOS_{f.name.upper()}={raw!r}: {exc}") from exc
        return cls(**values)


# Documentation of every setting: name → meaning (the README table mirrors this).
SETTINGS: dict[str, str] = {
    "host": "address the NGSI-LD API listens on",
    "port": "port of the NGSI-LD API",
    "workers": "API processes of `city-os serve`/`api` sharing the port (0 = one per core)",
    "database_url": "PostgreSQL DSN (PostGIS 3 required)",
    "db_pool_min": "minimum connections in the PostgreSQL pool",
    "db_pool_max": "maximum connections in the PostgreSQL pool",
    "db_acquire_timeout": "seconds a request waits for a free PostgreSQL connection before it "
    "is answered 503 with Retry-After",
    "db_retry_after": "seconds in the Retry-After header of a 503 when the database is "
    "unreachable (connection lost, failover, pool exhausted)",
    "public_url": "base URL clients use to reach the API (Location headers, hosted @contexts)",
    "kafka_bootstrap": "Kafka bootstrap servers; empty = events stay in the outbox",
    "kafka_topic": "topic that entity change events are published to",
    "kafka_idempotence": "enable the idempotent producer (Apache Kafka yes, Tansu no)",
    "relay_enabled": "run the outbox relay inside `city-os serve`",
    "relay_batch_size": "most outbox events the relay publishes per batch (one transaction)",
    "relay_poll_interval": "seconds between outbox polls when no NOTIFY arrives",
    "kafka_publish_timeout": "seconds a relay batch may take to be acknowledged by Kafka",
    "kafka_max_message_bytes": "largest event the relay publishes whole (at most the topic's "
    "max.message.bytes); a larger one goes out without its data, with a dataref to the entity",
    "outbox_retention": "seconds published outbox rows are kept before the relay deletes them",
    "max_body_bytes": "largest request body accepted (413 beyond)",
    "body_read_timeout": "seconds a request body may take to arrive (408 beyond; e.g. a body "
    "shorter than its Content-Length)",
    "max_batch_entities": "most entities in one batch operation",
    "max_json_depth": "deepest nesting of arrays and objects in a JSON body (400 beyond)",
    "max_json_containers": "most JSON arrays and objects in one body (413 beyond; ~150 ns of "
    "parsing each)",
    "max_attributes": "most attribute instances of one entity, sub-attributes included (400 "
    "beyond)",
    "max_entity_types": "most types of one entity (400 beyond)",
    "max_id_bytes": "longest entity id, datasetId or relationship object in UTF-8 bytes (400 "
    "beyond; ids are btree keys: with the name limit they must fit 2,704 bytes)",
    "max_name_bytes": "longest attribute name or entity type, as an expanded IRI in UTF-8 bytes "
    "(400 beyond)",
    "max_order_by_keys": "most orderBy keys of one query (400 beyond)",
    "max_query_selectors": "most entity selectors of one Query (400 beyond)",
    "max_join_level": "deepest joinLevel of linked entity retrieval (400 beyond)",
    "default_page_size": "page size of queries without `limit`",
    "max_page_size": "largest `limit` accepted (400 beyond)",
    "context_fetch_timeout": "seconds to wait for a remote @context",
    "context_max_bytes": "largest remote @context document accepted (pyld processes ~1 MB/s of "
    "context here: this bounds the CPU a new context URL can cost)",
    "context_cache_ttl": "seconds a fetched remote @context is reused",
    "context_resolve_timeout": "seconds the whole @context resolution of one request may take, "
    "nested and @import fetches included (504 beyond)",
    "context_connections_per_host": "most concurrent connections to one @context host (each "
    "host has its own pool, so a slow host cannot delay fetches from others)",
    "context_cache_bytes": "most bytes of remote @context documents kept in memory (least "
    "recently used evicted first)",
    "context_cache_entries": "most remote @context documents and term maps kept in memory each",
    "expiry_interval": "seconds between sweeps that remove expired transient entities",
    "temporal_max_instances": "most attribute instances of one entity in a temporal response; "
    "beyond, the page is cut (206 with Content-Range, §6.3.10)",
    "temporal_maintenance_interval": "seconds between temporal partition maintenance runs "
    "(partitions created ahead, partitions past a tenant's retention dropped)",
    "notifier_enabled": "run the notifier inside `city-os serve` (needs CITYOS_KAFKA_BOOTSTRAP)",
    "notifier_group_id": "Kafka consumer group of the notifier replicas",
    "notifier_batch_size": "most change events the notifier handles (and stores) per batch",
    "notifier_fetch_wait": "seconds a notifier fetch waits for new events (bounds latency)",
    "notifier_timeout": "seconds to wait for a receiver whose endpoint sets no timeout",
    "notifier_concurrency": "notifications in flight per endpoint",
    "notifier_queue_size": "notifications per endpoint held in memory; more wait in PostgreSQL",
    "notifier_retry_horizon": "seconds a notification is retried before it fails for good",
    "notifier_retry_max_delay": "longest back-off between retries to an endpoint, seconds",
    "notifier_lease": "seconds a replica's unsent notifications stay its own without renewal "
    "(then another replica takes them over)",
    "notifier_retention": "seconds delivered notifications are remembered to drop re-consumed "
    "events (then deleted)",
    "webpush_subject": "VAPID contact (mailto: or https: URI) sent to Web Push services (RFC 8292)",
    "stream_retention": "seconds live-stream notifications are kept for a Last-Event-ID resume",
    "log_level": "Python logging level",
    "auth_enabled": "verify OIDC bearer tokens and API keys (docs/access-control.md); off = every "
    "request may do everything, allowed only on a loopback CITYOS_HOST unless CITYOS_AUTH_INSECURE",
    "auth_insecure": "start with authentication off on a non-loopback CITYOS_HOST (only behind a "
    "gateway that authenticates every request itself)",
    "oidc_issuers": "JSON list of trusted OIDC issuers: "
    '`[{"issuer", "audience", "tenants": ["*"], "rolesClaim", "groupsClaim", "citizens"}]`',
    "oidc_clock_skew": "seconds of clock difference tolerated on exp, nbf and iat",
    "oidc_jwks_ttl": "seconds an issuer's JWKS is used before it is fetched again",
    "oidc_refresh_interval": "least seconds between two JWKS fetches of one issuer for a token "
    "with an unknown kid (a flood of bogus kids does not reach the IdP)",
    "rate_limit": "requests per second allowed per client (principal, API key or remote "
    "address), per API process; 0 = no limit",
    "rate_limit_burst": "requests a client may send at once before the rate applies",
    "outbound_allow": "non-public addresses outbound requests (remote @contexts, notifications) "
    "may reach anyway: comma-separated `loopback`, `private` or CIDRs; empty = public only",
    "federation_timeout": "seconds a context source may take to answer a forwarded request "
    "when its registration sets no management.timeout (then the answer goes on without it, "
    "reported in NGSILD-Warning)",
    "federation_concurrency": "most requests to context sources in flight at once, per process",
    "federation_connections_per_host": "most connections to one context source host (each host "
    "has its own pool, so a hanging source holds up only itself)",
    "access_log_retention_days": "days the citizens' access log (and the audit log) is kept",
    "owner_roles_grace_hours": "hours after the expiry of a subscription owner's latest token "
    "during which that token's roles and groups still decide its notifications",
    "ngsiv2_context": "@context URL that expands and compacts the types and attribute names of "
    "the NGSIv2 API (/v2); empty = the NGSI-LD core context",
}


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")
