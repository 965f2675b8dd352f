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

_ENV_REF = re.compile(r"^\$\{([A-Z0-9_]+)\}$")


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
    # is enqueued again by the ingest's sweeper (hub.dispatch.requeue_stale).
    requeue_after_s: float = 60.0
    # The same for the emergency class, checked every sweep: its rows are sent again as soon as
    # their job is known dead (rq sees a killed worker's job abandoned ~10 s after the kill).
    emergency_requeue_after_s: float = 5.0
    heartbeat_timeout_s: float = 180.0
    failure_threshold: int = 3
    # Scheduled commands (hub.scheduler). The scheduler hands a worker the commands due in the
    # next `scheduler_window_s` this long before the first of them starts, so the worker can load
    # rows, build payloads and open its adapter first and publish on time.
    scheduler_lead_s: float = 2.0
    scheduler_window_s: float = 1.0
    # The scheduler looks at the database at least this often even when nothing wakes it (a
    # submit publishes a wake-up on Redis; this covers a lost one).
    scheduler_poll_s: float = 5.0
    schedule_horizon_days: int = 366  # a start_at further ahead is refused as a likely typo
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Signs the console's session cookies. From HUB_SECRET_KEY or `secret_key: ${…}`; when
    # absent, one is generated once into <state_dir>/secret_key (see hub.secret_key).
    secret_key: str | None = field(default=None, repr=False)
    state_dir: str = "var"
    cookie_secure: bool = False  # set true behind TLS: the browser then sends the cookie over https only
    session_lifetime_s: int = 8 * 3600  # a working day; a console login ends after it
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
                 "emergency_requeue_after_s",
                 "scheduler_lead_s", "scheduler_window_s", "scheduler_poll_s", "schedule_horizon_days",
                 "state_dir", "cookie_secure", "session_lifetime_s"}
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
    s.state_dir = env.get("HUB_STATE_DIR", s.state_dir)
    if "HUB_COOKIE_SECURE" in env:
        s.cookie_secure = env["HUB_COOKIE_SECURE"].strip().lower() in ("1", "true", "yes", "on")
    if not isinstance(s.cookie_secure, bool):
        raise ConfigError(f"{s.source}: cookie_secure must be true or false")
    if s.secret_key is not None and len(str(s.secret_key)) < 32:
        where = "HUB_SECRET_KEY" if env.get("HUB_SECRET_KEY") else f"{s.source}: secret_key"
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
