"""The sources file (setting `sources_file`): which content sources a province runs, and how.

    sources:
      - name: tinh-rss                 # unique; the key of its health and of its contents
        plugin: rss                    # a source plugin's manifest name (`hub plugins`)
        url: https://example.vn/rss    # this and any key below not listed in HUB_KEYS go to the plugin
        token: ${TINH_RSS_TOKEN}       # a secret: read from the environment, never written in the file
        interval_s: 300                # not below the plugin's min_interval_s
        area_code: "80"                # the area of items that name none
        category: thoi-su
        auto_publish: false            # true: items are published at once (actor source:NAME)
        allow_exercise: false          # true: test/exercise items may be published like the others
        emergency: draft               # draft (awaits approval) or dispatch (published and played at once)

Every error is one line naming the file, the source and the key, so an administrator editing the
file on a running hub sees what to fix; the poll loop keeps the last good file meanwhile.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.addresses import AddressPolicy
from hub.capabilities import EMERGENCY
from hub.config import redact
from hub.config_file import ENV_REF, ConfigBook, entry_name, expand, parse_list, read_text
from hub.plugins import PluginError, Plugins
from hub.source import Source, SourceError

EMERGENCY_ACTIONS = ("draft", "dispatch")
DEFAULT_INTERVAL_S = 300.0
HUB_KEYS = ("name", "plugin", "enabled", "interval_s", "timeout_s", "area_code", "category", "auto_publish",
            "allow_exercise", "emergency")


class SourceConfigError(ValueError):
    """The sources file (or one source in it) is wrong; one line naming file, source and key."""


@dataclass(frozen=True)
class SourceConfig:
    """One configured source. `options` go to the plugin, with ${ENV} references expanded;
    `raw` is the entry as written (references not expanded), safe to show and to put in a job."""

    name: str
    plugin: str
    enabled: bool = True
    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float | None = None  # None: the setting source_fetch_timeout_s
    area_code: str | None = None
    category: str | None = None
    auto_publish: bool = False
    allow_exercise: bool = False
    emergency: str = "draft"
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def config_hash(self) -> str:
        """Changes when the entry as written changes (a new URL is polled from scratch)."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()

    def dispatches(self, priority: str) -> bool:
        """Whether an item of this class is published and played at once."""
        return priority == EMERGENCY and self.emergency == "dispatch"

    def shown(self) -> dict[str, Any]:
        """The entry as written, for the API and CLI: a ${NAME} reference as it stands (it names the
        variable, not the secret), any other value of a secret-looking key redacted."""
        def one(key: str, value: Any) -> Any:
            if key in HUB_KEYS or (isinstance(value, str) and ENV_REF.fullmatch(value)):
                return value
            return redact(value, key)

        return {k: one(k, v) for k, v in sorted(self.raw.items())}

    def refuse_hub_services(self, policy: AddressPolicy) -> None:
        """SourceError when an option is a web address of one of the hub's own services (Redis,
        the database, a broker, the API): a source typed by mistake, or by someone hostile, must
        not make the hub send requests to itself."""
        for key, value in _web_addresses(self.options):
            parts = urlsplit(value)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue  # the plugin's own check names a bad port
            own = policy.own_service(parts.hostname or "", port)
            if own is not None:
                raise SourceError(f"source {self.name}: {key}: {parts.hostname}:{port} is the hub's own {own}; "
                                  f"a source can never be one")

    def instance(self, plugins: Plugins) -> Source:
        """The plugin, configured; SourceError naming the source when the plugin refuses its options."""
        try:
            cls = plugins.source(self.plugin)
        except PluginError as exc:
            raise SourceError(f"source {self.name}: {exc}") from None
        return cls.configured(self.options)


def _web_addresses(value: Any, key: str = "") -> list[tuple[str, str]]:
    """(option path, value) of every http(s) URL among a source's options, however deep."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _web_addresses(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _web_addresses(v, f"{key}[{i}]")]
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return [(key, value)]
    return []


def _typed(entry: dict[str, Any], key: str, kinds: tuple[type, ...], noun: str, where: str) -> Any:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise SourceConfigError(f"{where}: {key}: expected {noun}, got {value!r}")
    return value


def parse_entry(entry: Any, where: str, plugins: Plugins, env: Mapping[str, str] | None = None,
                check_plugin: bool = True) -> SourceConfig:
    """One source entry, checked; `where` begins every error ("sources.yaml: source tinh-rss")."""
    env = os.environ if env is None else env
    name = entry_name(entry, where, "source", SourceConfigError, keys_shown="name, plugin, …")
    where = f"{where} {name}"
    plugin = _typed(entry, "plugin", (str,), "a source plugin's name", where)
    if not plugin:
        raise SourceConfigError(f"{where}: plugin: required (a source plugin's name, see `hub plugins`)")
    flags = {k: _typed(entry, k, (bool,), "true or false", where)
             for k in ("enabled", "auto_publish", "allow_exercise")}
    interval = _typed(entry, "interval_s", (int, float), "a number of seconds", where)
    timeout = _typed(entry, "timeout_s", (int, float), "a number of seconds", where)
    if timeout is not None and timeout <= 0:
        raise SourceConfigError(f"{where}: timeout_s: must be more than 0 seconds, not {timeout!r}")
    area = entry.get("area_code")
    if area is not None and not isinstance(area, str | int) or isinstance(area, bool):
        raise SourceConfigError(f"{where}: area_code: expected an area code, got {area!r}")
    category = _typed(entry, "category", (str,), "text", where)
    emergency = entry.get("emergency", "draft")
    if emergency not in EMERGENCY_ACTIONS:
        raise SourceConfigError(f"{where}: emergency: expected one of {', '.join(EMERGENCY_ACTIONS)}, "
                                f"got {emergency!r}")
    raw = {k: v for k, v in entry.items()}
    options = {k: expand(v, f"{where}: {k}", env, SourceConfigError) for k, v in entry.items() if k not in HUB_KEYS}
    least = 0.0
    if check_plugin:
        try:
            cls = plugins.source(plugin)
        except PluginError as exc:
            raise SourceConfigError(f"{where}: plugin: {exc}") from None
        least = cls.manifest.min_interval_s
        try:
            cls.configured(options)  # refuses a wrong option now, not at the first poll
        except SourceError as exc:
            raise SourceConfigError(f"{where}: {exc}") from None
    if interval is None:
        interval = max(DEFAULT_INTERVAL_S, least)
    if interval <= 0 or interval < least:
        raise SourceConfigError(f"{where}: interval_s: {interval:g} is below the plugin {plugin}'s "
                                f"min_interval_s ({least:g})" if interval > 0 else
                                f"{where}: interval_s: must be more than 0 seconds")
    return SourceConfig(name=name, plugin=plugin, interval_s=float(interval),
                        timeout_s=float(timeout) if timeout is not None else None,
                        area_code=str(area) if area is not None else None, category=category,
                        emergency=emergency, options=options, raw=raw,
                        **{k: v for k, v in flags.items() if v is not None})


def parse_text(text: str, origin: str, plugins: Plugins, env: Mapping[str, str] | None = None,
               check_plugin: bool = True) -> dict[str, SourceConfig]:
    """Every source in a sources file's text, by name; SourceConfigError for the first thing wrong."""
    return parse_list(text, origin, "sources", "source",
                      lambda entry, where: parse_entry(entry, where, plugins, env, check_plugin),
                      lambda cfg: cfg.name, SourceConfigError)


def load_file(path: str | Path, plugins: Plugins, env: Mapping[str, str] | None = None) -> dict[str, SourceConfig]:
    """The sources in the file at `path`; an absent file is an error naming it."""
    return parse_text(read_text(path, "sources", SourceConfigError), str(path), plugins, env)


class SourceBook(ConfigBook[SourceConfig]):
    """The running sources (see ConfigBook): an edit of the file takes effect without a restart, a
    broken one leaves the last good sources running and `error` says what is wrong."""

    kind = "sources"
    error_type = SourceConfigError

    def __init__(self, path: str | Path | None, plugins: Plugins, env: Mapping[str, str] | None = None) -> None:
        super().__init__(path)
        self.plugins = plugins
        self.env = env

    @property
    def sources(self) -> dict[str, SourceConfig]:
        return self.entries

    def parse(self, text: str) -> dict[str, SourceConfig]:
        return parse_text(text, str(self.path), self.plugins, self.env)
