"""Settings, from the environment and an optional YAML file (HUB_CONFIG).

Secrets never live in the repository: a YAML value "${NAME}" is read from the environment.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.addresses import DEFAULT_SERIAL_PREFIXES, parse_net_rule

_ENV_REF = re.compile(r"^\$\{([A-Z0-9_]+)\}$")
# integer settings and their least sensible value
INT_AT_LEAST = {"login_max_failures": 1, "login_lockout_s": 1, "login_window_s": 1, "login_address_max_failures": 1,
                "login_audit_failures": 0, "login_audit_period_s": 1, "trusted_proxies": 0}


class ConfigError(ValueError):
    """The configuration is wrong; the message names the file and the key."""


@dataclass
class Settings:
    database_url: str = "sqlite:///var/hub.sqlite3"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "hub"
    default_ttl_s: int = 600
    retry_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0)
    batch_size: int = 500
    sweep_interval_s: float = 1.0
    # A delivery still `queued` this long after its command was accepted, whose command has no
    # job waiting or running (Redis restarted without persistence, a worker died mid-batch),
    # is enqueued again by the ingest's sweeper (hub.delivery.dispatch.requeue_stale).
    requeue_after_s: float = 60.0
    # The same for the emergency class, checked every sweep: its rows are sent again as soon as
    # their job is known dead (rq sees a killed worker's job abandoned ~10 s after the kill).
    emergency_requeue_after_s: float = 5.0
    heartbeat_timeout_s: float = 180.0
    failure_threshold: int = 3
    # Fault drills only: the ingest holds each batch this long before it writes it (tests kill it
    # between hearing acks and storing them). Leave it 0.
    ingest_commit_delay_s: float = 0.0
    # The ingest's quarantine (hub.delivery.quarantine) keeps the newest this many messages it could not store.
    quarantine_max_rows: int = 100_000
    # Scheduled commands (hub.delivery.release). The scheduler hands a worker the commands due in the
    # next `scheduler_window_s` this long before the first of them starts, so the worker can load
    # rows, build payloads and open its adapter first and publish on time.
    scheduler_lead_s: float = 2.0
    scheduler_window_s: float = 1.0
    # The scheduler looks at the database at least this often even when nothing wakes it (a
    # submit publishes a wake-up on Redis; this covers a lost one).
    scheduler_poll_s: float = 5.0
    schedule_horizon_days: int = 366  # a start_at (or a bulletin's valid_from/valid_until) further ahead is refused
    # A command's expires_at may lie at most this long after it starts: past that a bulletin is stale
    # (an operator sends it again), and a command that never expires is refused (one day).
    max_command_ttl_s: int = 86400
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Signs the console's session cookies. From HUB_SECRET_KEY or `secret_key: ${…}`; when
    # absent, one is generated once into <state_dir>/secret_key (see hub.access.secret_key).
    secret_key: str | None = field(default=None, repr=False)
    # Keys the audit log's hash chain (HMAC), so that someone who can write the database cannot
    # rewrite it unseen. From HUB_AUDIT_KEY or `audit_key: ${…}`; when absent, one is generated
    # once into <state_dir>/audit_key (see hub.access.secret_key). Never stored in the database.
    audit_key: str | None = field(default=None, repr=False)
    state_dir: str = "var"
    cookie_secure: bool = False  # set true behind TLS: the browser then sends the cookie over https only
    session_lifetime_s: int = 8 * 3600  # a working day; a console login ends after it
    # Sign-in throttling (hub.access.login_throttle): an account is locked for login_lockout_s after
    # login_max_failures consecutive failures (an administrator lifts it sooner); an address
    # is refused for the rest of a login_window_s window after login_address_max_failures.
    login_max_failures: int = 10
    login_lockout_s: int = 900
    login_window_s: int = 900
    login_address_max_failures: int = 50
    # The first login_audit_failures failed sign-ins of each login_audit_period_s are audited one
    # by one; further ones are counted into one summary entry per period.
    login_audit_failures: int = 20
    login_audit_period_s: int = 300
    # Reverse proxies in front of the API whose X-Forwarded-For is trusted for the client's
    # address (0: none, the address is the connection's). Behind nginx on the same host: 1.
    trusted_proxies: int = 0
    # Where devices may be (hub.addresses): serial ports under these path prefixes; network
    # devices and gateways only at these hosts/networks and ports ("10.80.0.0/16:502",
    # "gw.vendor.vn:443"); none until a province lists them. The hub's own Redis, database, MQTT
    # broker and API (api_listen) are refused whatever the list says.
    device_serial_prefixes: list[str] = field(default_factory=lambda: list(DEFAULT_SERIAL_PREFIXES))
    device_networks: list[str] = field(default_factory=list)
    api_listen: str = "127.0.0.1:8080"  # where the API is served (gunicorn -b): never a device
    source: str = "defaults"

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugins.get(name) or {})


def _expand(value: Any, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        if m:
            if m.group(1) not in env:
                raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return env[m.group(1)]
    return value


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    s = Settings()
    path = env.get("HUB_CONFIG")
    if path:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"HUB_CONFIG={path}: no such file")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping at the top level")
        data = _expand(data, path, env)  # the environment given, so that a caller's stands alone
        known = {"database_url", "redis_url", "queue", "default_ttl_s", "retry_backoff_s", "batch_size",
                 "sweep_interval_s", "requeue_after_s", "heartbeat_timeout_s", "failure_threshold", "plugins", "secret_key",
                 "ingest_commit_delay_s", "quarantine_max_rows", "emergency_requeue_after_s",
                 "scheduler_lead_s", "scheduler_window_s", "scheduler_poll_s", "schedule_horizon_days",
                 "max_command_ttl_s", "audit_key", "device_serial_prefixes", "device_networks", "api_listen",
                 "state_dir", "cookie_secure", "session_lifetime_s", *INT_AT_LEAST}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown keys: {', '.join(unknown)}")
        for key, value in data.items():
            if key == "retry_backoff_s":
                value = tuple(float(v) for v in value)
            setattr(s, key, value)
        s.source = path
    s.database_url = env.get("HUB_DATABASE_URL", s.database_url)
    s.redis_url = env.get("HUB_REDIS_URL", s.redis_url)
    s.queue = env.get("HUB_QUEUE", s.queue)
    if "HUB_DEFAULT_TTL_S" in env:
        s.default_ttl_s = int(env["HUB_DEFAULT_TTL_S"])
    if "HUB_RETRY_BACKOFF_S" in env:
        s.retry_backoff_s = tuple(float(v) for v in env["HUB_RETRY_BACKOFF_S"].split(",") if v.strip())
    s.secret_key = env.get("HUB_SECRET_KEY") or s.secret_key or None
    s.audit_key = env.get("HUB_AUDIT_KEY") or s.audit_key or None
    s.state_dir = env.get("HUB_STATE_DIR", s.state_dir)
    if "HUB_COOKIE_SECURE" in env:
        s.cookie_secure = env["HUB_COOKIE_SECURE"].strip().lower() in ("1", "true", "yes", "on")
    if not isinstance(s.cookie_secure, bool):
        raise ConfigError(f"{s.source}: cookie_secure must be true or false")
    for key, least in INT_AT_LEAST.items():
        value = getattr(s, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{s.source}: {key} must be a whole number of at least {least}, not {value!r}")
    if s.default_ttl_s > s.max_command_ttl_s:  # else every command without an expires_at is refused
        raise ConfigError(f"{s.source}: default_ttl_s ({s.default_ttl_s}) exceeds max_command_ttl_s "
                          f"({s.max_command_ttl_s})")
    if "HUB_DEVICE_NETWORKS" in env:
        s.device_networks = [n.strip() for n in env["HUB_DEVICE_NETWORKS"].split(",") if n.strip()]
    for key in ("device_serial_prefixes", "device_networks"):
        value = getattr(s, key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{s.source}: {key} must be a list of strings")
    if not all(p.startswith("/") for p in s.device_serial_prefixes):
        raise ConfigError(f"{s.source}: device_serial_prefixes: each must be an absolute path prefix (/dev/ttyUSB)")
    for entry in s.device_networks:
        try:
            parse_net_rule(entry)
        except ValueError as exc:
            raise ConfigError(f"{s.source}: device_networks: {exc}") from None
    if s.secret_key is not None and len(str(s.secret_key)) < 32:
        where = "HUB_SECRET_KEY" if env.get("HUB_SECRET_KEY") else f"{s.source}: secret_key"
        raise ConfigError(f"{where} must be at least 32 characters (generate one with "
                          f"`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    if s.audit_key is not None and len(str(s.audit_key)) < 32:
        where = "HUB_AUDIT_KEY" if env.get("HUB_AUDIT_KEY") else f"{s.source}: audit_key"
        raise ConfigError(f"{where} must be at least 32 characters (generate one with "
                          f"`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)")
    return s


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings | None) -> None:
    global _settings
    _settings = settings
