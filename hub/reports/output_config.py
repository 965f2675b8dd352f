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
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.config import redact
from hub.output import Output, OutputError
from hub.plugins import PluginError, Plugins

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
KEYS = ("name", "plugin", "enabled", "config")
SETTLE_NS = 2_000_000_000


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
            if isinstance(value, str) and _ENV_REF.fullmatch(value):
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
    if not _NAME.match(name):  # never "..", never a "/"
        raise OutputConfigError(f"output {name!r}: not an output's name")
    return Path(hub_state_dir) / "outputs" / name


def _expand(value: Any, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, str):
        for name in _ENV_REF.findall(value):
            if name not in env:
                raise OutputConfigError(f"{where}: environment variable {name} is not set")
        return _ENV_REF.sub(lambda m: env[m.group(1)], value)
    return value


def parse_entry(entry: Any, where: str, plugins: Plugins, env: Mapping[str, str] | None = None,
                check_plugin: bool = True) -> OutputConfig:
    """One output entry, checked; `where` begins every error ("outputs.yaml: output metrics")."""
    env = os.environ if env is None else env
    if not isinstance(entry, dict):
        raise OutputConfigError(f"{where}: each output is a mapping of keys (name, plugin, enabled, config)")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise OutputConfigError(f"{where}: name: expected lower-case letters, digits, '-', '_' or '.', "
                                f"got {name!r}")
    where = f"{where} {name}"
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise OutputConfigError(f"{where}: {unknown[0]}: unknown key (an output has {', '.join(KEYS)}; the "
                                f"plugin's settings go under config)")
    plugin = entry.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise OutputConfigError(f"{where}: plugin: required (an output plugin's name, see `hub plugins`)")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise OutputConfigError(f"{where}: enabled: expected true or false, got {enabled!r}")
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise OutputConfigError(f"{where}: config: expected a mapping of the plugin's settings")
    options = _expand(config, f"{where}: config", env)
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
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise OutputConfigError(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or set(data) - {"outputs"}:
        raise OutputConfigError(f"{origin}: expected a mapping with one key, `outputs`, holding a list")
    entries = data.get("outputs") or []
    if not isinstance(entries, list):
        raise OutputConfigError(f"{origin}: outputs: expected a list of outputs")
    found: dict[str, OutputConfig] = {}
    for i, entry in enumerate(entries):
        cfg = parse_entry(entry, f"{origin}: output", plugins, env, check_plugin)
        if cfg.name in found:
            raise OutputConfigError(f"{origin}: output {cfg.name}: name: given twice (entry {i + 1})")
        found[cfg.name] = cfg
    return found


class OutputBook:
    """The running configuration: the outputs file re-read when it changes (mtime, then content
    hash), so an edit takes effect without a restart. A broken edit leaves the last good
    configuration running; `error` says what is wrong until the file is fixed."""

    def __init__(self, path: str | Path | None, plugins: Plugins, env: Mapping[str, str] | None = None) -> None:
        self.path = Path(path) if path else None
        self.plugins = plugins
        self.env = env
        self.outputs: dict[str, OutputConfig] = {}
        self.error: str | None = None
        self._mtime: int | None = None
        self._digest: str | None = None

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the running configuration changed."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
        except OSError as exc:
            self.error = f"{self.path}: cannot read the outputs file: {exc.strerror}"
            self._mtime = None
            return False
        if stat.st_mtime_ns == self._mtime:
            return False
        # A file written moments ago may be read half-written, and a second write within the
        # file system's timestamp granularity keeps its mtime: until it has settled, it is read
        # again at every refresh (its digest says whether it changed).
        settled = time.time_ns() - stat.st_mtime_ns > SETTLE_NS
        self._mtime = stat.st_mtime_ns if settled else None
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            self.error = f"{self.path}: cannot read the outputs file: {exc.strerror}"
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest and self.error is None:
            return False
        try:
            outputs = parse_text(raw.decode("utf-8", "replace"), str(self.path), self.plugins, self.env)
        except OutputConfigError as exc:
            self.error = str(exc)
            self._digest = digest  # the same broken text is reported once, not at every tick
            return False
        changed = {k: v.config_hash for k, v in outputs.items()} != {k: v.config_hash
                                                                     for k, v in self.outputs.items()}
        self.outputs, self.error, self._digest = outputs, None, digest
        return changed
