"""Settings: the only reader of ``os.environ``. Read once at start-up, frozen afterwards.

Every ``CITYOS_*`` variable is declared in ``SETTINGS`` with its default and meaning; the README's
settings table is checked against it by a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 1026
    workers: int = 1  # 0 = one per CPU core
    database_url: str = "postgresql://postgres@127.0.0.1:5432/cityos"
    db_pool_min: int = 2
    db_pool_max: int = 16
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
    max_batch_entities: int = 1000
    default_page_size: int = 20
    max_page_size: int = 1000
    context_fetch_timeout: float = 5.0
    context_max_bytes: int = 1024 * 1024
    context_cache_ttl: float = 3600.0
    expiry_interval: float = 1.0
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
    access_log_retention_days: int = 400

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
    "max_batch_entities": "most entities in one batch operation",
    "default_page_size": "page size of queries without `limit`",
    "max_page_size": "largest `limit` accepted (400 beyond)",
    "context_fetch_timeout": "seconds to wait for a remote @context",
    "context_max_bytes": "largest remote @context document accepted",
    "context_cache_ttl": "seconds a fetched remote @context is reused",
    "expiry_interval": "seconds between sweeps that remove expired transient entities",
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
    "access_log_retention_days": "days the citizens' access log (and the audit log) is kept",
}


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")
