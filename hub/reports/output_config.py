"""The outputs file (setting `outputs_file`): which outputs a province runs, and how.

    outputs:
      - name: metrics                  # unique; the key of its health in `hub outputs list`
        plugin: prometheus             # an output plugin's manifest name (`hub plugins`)
        enabled: true                  # false: configured, not run
        config:                        # the plugin's own settings, checked by its config schema
          port: 9464
          bearer_token: ${HUB_METRICS_TOKEN}   # a secret: read from the environment, never in the file

Every error is one line naming the file, the output and the key, so an administrator editing the
file on a running hub sees what to fix; the runner keeps the last good file meanwhile.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.config import redact
from hub.config_file import ENTRY_NAME, ENV_REF, ConfigBook, entry_name, expand, parse_list, refuse_unknown_keys
from hub.output import Output, OutputError
from hub.plugins import PluginError, Plugins

KEYS = ("name", "plugin", "enabled", "config")


class OutputConfigError(ValueError):
    """The outputs file (or one output in it) is wrong; one line naming file, output and key."""


@dataclass(frozen=True)
class OutputConfig:
    """One configured output. `options` go to the plugin, ${ENV} references expanded; `raw` is
    the entry as written (references not expanded), safe to show."""

    name: str
    plugin: str
    enabled: bool = True
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def config_hash(self) -> str:
        """Changes when the entry, or a secret it reads from the environment, changes: the
        runner then starts the output anew with its new configuration."""
        both = {"raw": self.raw, "options": self.options}
        return hashlib.sha256(json.dumps(both, sort_keys=True, default=str).encode()).hexdigest()

    def shown(self) -> dict[str, Any]:
        """The entry as written, for the API and CLI: a ${NAME} reference as it stands (it names the
        variable, not the secret), any other value of a secret-looking key redacted."""
        def one(key: str, value: Any) -> Any:
            if isinstance(value, dict):
                return {k: one(k, v) for k, v in sorted(value.items())}
            if isinstance(value, str) and ENV_REF.fullmatch(value):
                return value
            return redact(value, key)

        return {k: (v if k in ("name", "plugin", "enabled") else one(k, v)) for k, v in sorted(self.raw.items())}

    def instance(self, plugins: Plugins, state_dir: Path | None = None) -> Output:
        """The plugin, configured; OutputError naming the output when the plugin refuses its options.

        `state_dir` (the runner's and the API's: `entry_state_dir`) goes to a plugin whose settings
        have a `state_dir` key, unless the entry sets one itself: two entries of one plugin then keep
        their files (an event stream's dead letters, its sequence counter) apart, and the API finds
        them where the runner's output keeps them."""
        try:
            cls = plugins.output(self.plugin)
        except PluginError as exc:
            raise OutputError(f"output {self.name}: {exc}") from None
        options = self.options
        schema = cls.manifest.config_schema
        if state_dir is not None and schema is not None and "state_dir" in schema().fields \
                and not options.get("state_dir"):
            options = {**options, "state_dir": str(state_dir)}
        try:
            return cls.configured(options)
        except OutputError as exc:
            raise OutputError(f"output {self.name}: {exc}") from None


def entry_state_dir(hub_state_dir: str | Path, name: str) -> Path:
    """Where the output configured as `name` keeps its files: `<state_dir>/outputs/<name>` (a
    name is checked to be one path component: lower-case letters, digits, '-', '_', '.')."""
    if not ENTRY_NAME.match(name):  # never "..", never a "/"
        raise OutputConfigError(f"output {name!r}: not an output's name")
    return Path(hub_state_dir) / "outputs" / name


def parse_entry(entry: Any, where: str, plugins: Plugins, env: Mapping[str, str] | None = None,
                check_plugin: bool = True) -> OutputConfig:
    """One output entry, checked; `where` begins every error ("outputs.yaml: output metrics")."""
    env = os.environ if env is None else env
    name = entry_name(entry, where, "output", OutputConfigError, keys_shown=", ".join(KEYS))
    where = f"{where} {name}"
    refuse_unknown_keys(entry, where, KEYS, OutputConfigError,
                        f"an output has {', '.join(KEYS)}; the plugin's settings go under config")
    plugin = entry.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise OutputConfigError(f"{where}: plugin: required (an output plugin's name, see `hub plugins`)")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise OutputConfigError(f"{where}: enabled: expected true or false, got {enabled!r}")
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise OutputConfigError(f"{where}: config: expected a mapping of the plugin's settings")
    options = expand(config, f"{where}: config", env, OutputConfigError)
    cfg = OutputConfig(name=name, plugin=plugin, enabled=enabled, options=options, raw=dict(entry))
    if check_plugin:
        try:
            cfg.instance(plugins)  # refuses a wrong option now, not when the runner starts it
        except OutputError as exc:
            raise OutputConfigError(f"{where}: {str(exc).removeprefix(f'output {name}: ')}") from None
    return cfg


def parse_text(text: str, origin: str, plugins: Plugins, env: Mapping[str, str] | None = None,
               check_plugin: bool = True) -> dict[str, OutputConfig]:
    """Every output in an outputs file's text, by name; OutputConfigError for the first thing wrong."""
    return parse_list(text, origin, "outputs", "output",
                      lambda entry, where: parse_entry(entry, where, plugins, env, check_plugin),
                      lambda cfg: cfg.name, OutputConfigError)


class OutputBook(ConfigBook[OutputConfig]):
    """The running outputs (see ConfigBook): an edit of the file takes effect without a restart, a
    broken one leaves the last good outputs running and `error` says what is wrong."""

    kind = "outputs"
    error_type = OutputConfigError

    def __init__(self, path: str | Path | None, plugins: Plugins, env: Mapping[str, str] | None = None) -> None:
        super().__init__(path)
        self.plugins = plugins
        self.env = env

    @property
    def outputs(self) -> dict[str, OutputConfig]:
        return self.entries

    def parse(self, text: str) -> dict[str, OutputConfig]:
        return parse_text(text, str(self.path), self.plugins, self.env)

    def adopt(self, entries: dict[str, OutputConfig]) -> bool:
        """True only when an output's entry (or a secret it reads) changed: a file merely re-read
        (touched, or read again while it settles) restarts nothing."""
        changed = {k: v.config_hash for k, v in entries.items()} != {k: v.config_hash
                                                                     for k, v in self.entries.items()}
        self.entries = entries
        return changed
