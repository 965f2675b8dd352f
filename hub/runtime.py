"""What a hub process holds: settings, database, Redis, plugins and open vendor adapters.

API, worker and ingest each build one Runtime; tests and the embedded demo build theirs with
their own database, queue names and Redis connection.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from collections.abc import Callable
from typing import Any

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from hub.store import audit_chain
from hub.addresses import AddressPolicy
from hub.config import Settings, get_settings
from hub.capabilities import HIGHEST_FIRST
from hub.media import MediaStore
from hub.store.db import Database
from hub.plugins import Plugins, get_plugins
from hub.vendor import VendorAdapter

log = logging.getLogger(__name__)

QUEUE_ORDER = HIGHEST_FIRST  # workers drain emergency jobs first
# Jobs are JSON, never pickle: whoever can write to Redis must not be able to run code in a
# worker (which holds the MQTT login that reaches every speaker). Queue, worker and every
# Job.fetch must agree; job arguments are ids and lists of them.
JOB_SERIALIZER = JSONSerializer


class Runtime:
    def __init__(self, settings: Settings | None = None, db: Database | None = None,
                 redis: Redis | None = None, plugins: Plugins | None = None) -> None:
        self.settings = settings or get_settings()
        self.db = db or Database(self.settings.database_url)
        if self.db.audit_key is None:
            self.db.audit_key = _audit_key_reader(self.settings)
        audit_chain.use_default_key(self.db.audit_key)  # for callers of hub.access.audit without a session
        self._redis = redis
        self._plugins = plugins
        self._adapters: dict[str, VendorAdapter] = {}
        self._media_store: MediaStore | None = None
        self._lock = threading.Lock()

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            self._plugins = get_plugins()
        return self._plugins

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(self.settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
        return self._redis

    def queue_name(self, priority: str) -> str:
        return f"{self.settings.queue}.{priority}"

    def queue(self, priority: str) -> Queue:
        return Queue(self.queue_name(priority), connection=self.redis, serializer=JOB_SERIALIZER)

    def queues(self) -> list[Queue]:
        return [self.queue(p) for p in QUEUE_ORDER]

    def make_adapter(self, vendor: str) -> VendorAdapter:
        """A new, unopened adapter configured from the settings (validated by its config schema)."""
        cls = self.plugins.vendor(vendor)
        config: dict[str, Any] = self.settings.plugin_config(vendor)
        schema = cls.manifest.config_schema
        if schema is not None:
            config = schema().load(config)
        adapter = cls(config)
        adapter.address_policy = self.address_policy()
        return adapter

    def media_store(self) -> MediaStore:
        """The configured media store (setting media_store), made once per process.

        It is offered the hub's media settings (directory, public_base_url) and a URL-signing key
        derived from the secret key (url_secret), those its schema declares, then what
        plugins.<name> says, which wins; its schema checks the lot, and a wrong setting raises
        hub.media.MediaError naming it."""
        with self._lock:
            if self._media_store is None:
                from hub.access.secret_key import media_url_key

                name = self.settings.media_store
                cls = self.plugins.media_store(name)
                offered = {"directory": self.settings.media_dir or str(Path(self.settings.state_dir) / "media"), "public_base_url": self.settings.public_base_url,
                           "url_secret": media_url_key(self.settings).hex()}
                schema = cls.manifest.config_schema
                if schema is not None:  # a store that has no use for one must not be refused for it
                    offered = {k: v for k, v in offered.items() if k in schema().fields}
                config = {**offered, **self.settings.plugin_config(name)}
                self._media_store = cls.configured(config)
            return self._media_store

    def address_policy(self) -> AddressPolicy:
        """Where devices may be, from the settings as they stand (hub.addresses)."""
        return AddressPolicy.from_settings(self.settings)

    def adapter(self, vendor: str) -> VendorAdapter:
        """The open adapter for `vendor`, shared by this process's jobs."""
        with self._lock:
            adapter = self._adapters.get(vendor)
            if adapter is None:
                adapter = self.make_adapter(vendor)
                adapter.open()
                self._adapters[vendor] = adapter
            return adapter

    def drop_adapter(self, vendor: str) -> None:
        """Close and forget an adapter after a failure, so the next job reconnects."""
        with self._lock:
            adapter = self._adapters.pop(vendor, None)
        if adapter is not None:
            try:
                adapter.close()
            except Exception:  # closing a broken adapter may fail too; the next open matters
                log.warning("closing adapter %s failed", vendor, exc_info=True)

    def close(self) -> None:
        for vendor in list(self._adapters):
            self.drop_adapter(vendor)
        self.db.dispose()


def _audit_key_reader(settings: Settings) -> Callable[[], bytes]:
    """The audit key, read (or generated) on first use and then kept."""
    from hub.access.secret_key import audit_key

    key: list[bytes] = []

    def read() -> bytes:
        if not key:
            key.append(audit_key(settings))
        return key[0]

    return read


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def set_runtime(rt: Runtime | None) -> None:
    global _runtime
    _runtime = rt
