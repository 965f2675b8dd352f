"""Finds plugins through entry points and collects what they register.

Built-in plugins are ordinary distributions under plugins/, found exactly like a vendor's.
HUB_PLUGINS=name1,name2 restricts loading to those entry-point names (to certify one alone);
HUB_PLUGINS= (empty) loads none.

Every kind (vendors, sources, outputs, speech providers, media stores) is collected the same
way: a plugin that fails to import, a hook that raises, a class that breaks its contract, or a
name another plugin already holds is skipped and reported in `Plugins.problems`; the others
still load. Entry points load in group then name order, so when two plugins claim one name the
same one keeps it on every start.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hub import hookspecs
from hub.media import MediaStore
from hub.output import Output
from hub.source import Source
from hub.speech import SpeechProvider
from hub.vendor import Manifest, ManifestError, VendorAdapter

log = logging.getLogger(__name__)

# The group only says how the hub finds a plugin's module (and labels it in `hub plugins`): once
# loaded, a module may implement any hook, so a distribution with several kinds needs one entry
# point. hub.tools: plugins that only add commands (certification, scaffolding); HUB_PLUGINS does
# not filter them.
GROUPS = ("hub.vendors", "hub.sources", "hub.outputs", "hub.speech", "hub.media", "hub.tools")


@dataclass(frozen=True)
class Kind:
    """One kind of plugin class: the hook that registers it and the contract it must keep."""

    key: str  # the key in describe() and /api/plugins
    label: str  # singular, for messages and `hub plugins`
    hook: str
    base: type


def _vendor_problems(cls: type[VendorAdapter]) -> list[str]:
    return [] if isinstance(getattr(cls, "manifest", None), Manifest) else [
        "has no manifest (a hub.vendor.Manifest in the class attribute `manifest`)"]


KINDS = (
    Kind("vendors", "vendor", "register_vendors", VendorAdapter),
    Kind("sources", "source", "register_sources", Source),
    Kind("outputs", "output", "register_outputs", Output),
    Kind("speech_providers", "speech provider", "register_speech_providers", SpeechProvider),
    Kind("media_stores", "media store", "register_media_stores", MediaStore),
)
KIND_BY_KEY = {k.key: k for k in KINDS}

# The hub's own API resources and command groups: modules with hookimpls, registered into the plugin
# manager exactly like a third-party plugin (as datasette's DEFAULT_PLUGINS), always, and listed first.
# Named by dotted path and imported when first asked for: this module sits below hub.api and hub.cli
# in the layering, and a worker that never serves the API need not import flask.
BUILTIN_BLUEPRINTS = ("hub.api.areas", "hub.api.devices", "hub.api.groups", "hub.api.contents",
                      "hub.api.content_workflow", "hub.api.commands", "hub.api.plugins", "hub.api.health",
                      "hub.api.auth", "hub.api.users", "hub.api.audit", "hub.api.ingest", "hub.api.sources",
                      "hub.api.feed", "hub.api.media", "hub.api.relays",
                      "hub.api.emergency", "hub.api.programmes", "hub.api.as_run",
                      "hub.api.outputs", "hub.api.statistics")
BUILTIN_EVENTS = ("hub.events",)
BUILTIN_CLI = ("hub.cli.database", "hub.cli.fleet", "hub.cli.commands", "hub.cli.plugins", "hub.cli.schemas",
               "hub.cli.processes", "hub.cli.ingest", "hub.cli.demo", "hub.cli.admin", "hub.cli.contents",
               "hub.cli.config", "hub.cli.sources", "hub.cli.speech", "hub.cli.relays",
               "hub.cli.emergency", "hub.cli.programmes", "hub.cli.as_run",
               "hub.cli.outputs", "hub.cli.reports")


@dataclass
class LoadedPlugin:
    name: str
    group: str
    distribution: str
    version: str
    module: Any = field(repr=False, default=None)
    entry_point: str = ""  # "package.module" it was loaded from; empty when registered directly


@dataclass
class Registration:
    """One thing a plugin registered through register_blueprints or register_cli_groups."""
    plugin: str  # the plugin's name (a built-in's dotted module name)
    item: Any  # the blueprint or click command
    rules: Any = None  # a blueprint's permission rules


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something that breaks the contract."""


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Plugins:
    """The plugin manager plus what the plugins registered. Build one with `load()`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("hub")
        self.pm.add_hookspecs(hookspecs)
        self.loaded: list[LoadedPlugin] = []
        self.skipped: list[LoadedPlugin] = []  # found but not loaded (failed to import, name taken)
        self.problems: list[str] = []  # what was refused while loading, for `hub plugins`
        self._problems_of: dict[str, list[str]] = {}  # the same, by plugin (entry-point) name
        self._collected: dict[str, dict[str, tuple[type, str]]] = {}  # kind key → name → (class, plugin)

    def _problem(self, plugin: str, text: str) -> None:
        if text in self.problems:  # collected again after register_module: said once is enough
            return
        log.error(text)
        self.problems.append(text)
        self._problems_of.setdefault(plugin, []).append(text)

    def register_module(self, module: Any, name: str, group: str = "hub.vendors",
                        distribution: str = "", version: str = "", entry_point: str = "") -> None:
        """Register a plugin module directly (how tests add one without installing it)."""
        self.pm.register(module, name=name)
        self.loaded.append(LoadedPlugin(name, group, distribution or name, version, module, entry_point))
        self._collected = {}

    def report(self, problem: str, plugin: str = "") -> None:
        """Note something refused (once), for the log and `hub plugins`."""
        self._problem(plugin, problem)

    def blueprints(self) -> list[Registration]:
        """API blueprints with their permission rules: the hub's own first, then the plugins'."""
        return self._registrations("register_blueprints", BUILTIN_BLUEPRINTS,
                                   lambda found, plugin: lambda blueprint, rules=None:
                                   found.append(Registration(plugin, blueprint, rules)))

    def cli_groups(self) -> list[Registration]:
        """Click groups and commands to add under `hub`: the hub's own first, then the plugins'."""
        return self._registrations("register_cli_groups", BUILTIN_CLI,
                                   lambda found, plugin: lambda command:
                                   found.append(Registration(plugin, command)))

    def event_types(self) -> dict[str, Registration]:
        """Event types by name, with the plugin that declared each: the hub's own first. A class
        that is not a hub.events.Event with a `type`, or a name already declared, is reported."""
        from hub.events import Event

        found: dict[str, Registration] = {}
        for reg in self._registrations("register_event_types", BUILTIN_EVENTS,
                                       lambda into, plugin: lambda cls: into.append(Registration(plugin, cls))):
            name = getattr(reg.item, "type", "") if isinstance(reg.item, type) and issubclass(reg.item, Event) else ""
            if not name:
                self.report(f"plugin {reg.plugin}: {reg.item!r} is not a hub.events.Event subclass with a `type` "
                            "name; skipped", reg.plugin)
            elif name in found and found[name].item is not reg.item:
                self.report(f"plugin {reg.plugin}: event type {name!r} is already declared by "
                            f"{found[name].plugin}; skipped", reg.plugin)
            else:
                found.setdefault(name, reg)
        return found

    def _registrations(self, hook_name: str, builtins: tuple[str, ...], make_register: Any) -> list[Registration]:
        for name in builtins:
            if not self.pm.has_plugin(name):
                self.pm.register(importlib.import_module(name), name=name)
        order = {name: i for i, name in enumerate(builtins)}
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()  # in the order registered
        impls = sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))
        found: list[Registration] = []
        for impl in impls:
            mine: list[Registration] = []
            register = make_register(mine, impl.plugin_name)
            try:
                impl.function(**{"register": register} if "register" in impl.argnames else {})
            except Exception as exc:  # a broken plugin must not take the others down with it; the hub's own must
                if impl.plugin_name in order:
                    raise
                self.report(f"plugin {impl.plugin_name}: {hook_name} failed and is skipped: {exc}", impl.plugin_name)
                continue
            found.extend(mine)
        return found

    def load_entry_points(self, only: set[str] | None = None) -> None:
        for group in GROUPS:
            for ep in sorted(md.entry_points(group=group), key=lambda e: (e.name, e.value)):
                # HUB_PLUGINS narrows the plugins that drive devices; tools (certify…) stay available
                if only is not None and ep.name not in only and group != "hub.tools":
                    continue
                dist = ep.dist.name if ep.dist else ep.name
                version = ep.dist.version if ep.dist else ""
                if self.pm.has_plugin(ep.name):
                    holder = next((p for p in self.loaded if p.name == ep.name), None)
                    if holder is not None and holder.entry_point not in ("", ep.value):
                        # one module under two groups is fine; two modules under one name are not
                        self.skipped.append(LoadedPlugin(ep.name, group, dist, version, None, ep.value))
                        self._problem(ep.name, f"plugin {ep.name} ({group}, {dist}): the name is already taken by "
                                               f"{holder.distribution} ({holder.entry_point}); skipped")
                    continue
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not take the others down with it
                    self.skipped.append(LoadedPlugin(ep.name, group, dist, version, None, ep.value))
                    self._problem(ep.name, f"plugin {ep.name} ({group}) failed to import and is skipped: "
                                           f"{type(exc).__name__}: {exc}")
                    continue
                self.register_module(module, ep.name, group, dist, version, ep.value)

    def _collect(self, kind: Kind) -> dict[str, tuple[type, str]]:
        """Call each plugin's hook on its own, so that one raising or registering junk costs only
        its own registrations; keep the first plugin's class for each name."""
        if kind.key in self._collected:
            return self._collected[kind.key]
        found: dict[str, tuple[type, str]] = {}
        for impl in getattr(self.pm.hook, kind.hook).get_hookimpls():
            if impl.hookwrapper or getattr(impl, "wrapper", False):
                continue
            plugin = impl.plugin_name
            mine: list[type] = []

            def register(cls: Any, mine: list[type] = mine) -> None:
                mine.append(cls)

            try:
                impl.function(**{arg: register for arg in impl.argnames if arg == "register"})
            except Exception as exc:
                self._problem(plugin, f"plugin {plugin}: {kind.hook} raised {type(exc).__name__}: {exc};"
                                      f" its {kind.key.replace('_', ' ')} are skipped")
                continue
            for cls in mine:
                self._accept(kind, plugin, cls, found)
        self._collected[kind.key] = found
        return found

    def _accept(self, kind: Kind, plugin: str, cls: Any, found: dict[str, tuple[type, str]]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, kind.base)):
            self._problem(plugin, f"plugin {plugin}: {kind.hook} registered {cls!r}, which is not a "
                                  f"{kind.base.__module__}.{kind.base.__name__} subclass; ignored")
            return
        problems = _vendor_problems(cls) if kind.base is VendorAdapter else cls.contract_problems()
        if problems:
            self._problem(plugin, f"plugin {plugin}: {kind.label} class {_qualname(cls)} {'; '.join(problems)};"
                                  f" ignored")
            return
        name = cls.manifest.name
        if name in found:
            held, holder = found[name]
            if held is not cls:  # keep the first: one clash must not take every other one down with it
                self._problem(plugin, f"plugin {plugin}: {_qualname(cls)} claims the {kind.label} name {name},"
                                      f" already taken by {held.__module__} (plugin {holder}); ignored")
            return
        found[name] = (cls, plugin)

    def _classes(self, key: str) -> dict[str, Any]:
        return {name: cls for name, (cls, _plugin) in self._collect(KIND_BY_KEY[key]).items()}

    def vendors(self) -> dict[str, type[VendorAdapter]]:
        """Vendor adapter classes by manifest name."""
        return self._classes("vendors")

    def sources(self) -> dict[str, type[Source]]:
        """Content source classes by manifest name."""
        return self._classes("sources")

    def outputs(self) -> dict[str, type[Output]]:
        """Output classes by manifest name."""
        return self._classes("outputs")

    def speech_providers(self) -> dict[str, type[SpeechProvider]]:
        """Text-to-speech provider classes by manifest name."""
        return self._classes("speech_providers")

    def media_stores(self) -> dict[str, type[MediaStore]]:
        """Media store classes by manifest name."""
        return self._classes("media_stores")

    def simulators(self) -> dict[str, Any]:
        """Simulator factories by vendor name (for the demo, benchmarks and certification)."""
        found: dict[str, Any] = {}

        def register(vendor: str, factory: Any) -> None:
            found[vendor] = factory

        self.pm.hook.register_simulators(register=register)
        return found

    def vendor(self, name: str) -> type[VendorAdapter]:
        return self._one("vendors", name)

    def _one(self, key: str, name: str) -> Any:
        found = self._classes(key)
        try:
            return found[name]
        except KeyError:
            label = KIND_BY_KEY[key].label
            raise PluginError(f"no {label} plugin named {name!r} is installed"
                              f" (installed: {', '.join(sorted(found)) or 'none'})") from None

    def source(self, name: str) -> type[Source]:
        return self._one("sources", name)

    def output(self, name: str) -> type[Output]:
        return self._one("outputs", name)

    def speech_provider(self, name: str) -> type[SpeechProvider]:
        return self._one("speech_providers", name)

    def media_store(self, name: str) -> type[MediaStore]:
        return self._one("media_stores", name)

    def describe(self) -> list[dict[str, Any]]:
        """Installed plugins with versions, the manifests of every class each registered (by kind),
        and, last, the plugins that were found but skipped, with why."""
        by_plugin: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for kind in KINDS:
            for cls, plugin in self._collect(kind).values():
                by_plugin.setdefault(plugin, {}).setdefault(kind.key, []).append(cls.manifest.to_dict())
        for name, reg in self.event_types().items():
            by_plugin.setdefault(reg.plugin, {}).setdefault("event_types", []).append(name)
        out = []
        for p in self.loaded:
            entry: dict[str, Any] = {"name": p.name, "group": p.group, "distribution": p.distribution,
                                     "version": p.version, "loaded": True}
            entry.update(by_plugin.get(p.name, {}))
            if self._problems_of.get(p.name):
                entry["problems"] = list(self._problems_of[p.name])
            out.append(entry)
        for p in self.skipped:
            out.append({"name": p.name, "group": p.group, "distribution": p.distribution, "version": p.version,
                        "loaded": False, "problems": list(self._problems_of.get(p.name, []))})
        return out


def kind_lines(p: dict[str, Any]) -> list[str]:
    """The `hub plugins` lines of one describe() entry for its sources, outputs, speech providers,
    media stores and problems (the CLI prints the vendors itself)."""
    lines = [f"source {m['name']}: {m['title']}" + (f" ({', '.join(m['formats'])})" if m["formats"] else "")
             for m in p.get("sources", [])]
    for m in p.get("outputs", []):
        when = ([f"events {', '.join(m['events'])}"] if m["events"] else []) + (
            [f"every {m['interval_s']:g} s"] if m["interval_s"] is not None else [])
        lines.append(f"output {m['name']}: {m['title']} ({'; '.join(when)})")
    lines += [f"speech {m['name']}: {m['title']} (languages {', '.join(m['languages'])})"
              for m in p.get("speech_providers", [])]
    lines += [f"media {m['name']}: {m['title']}" for m in p.get("media_stores", [])]
    if p.get("event_types"):
        lines.append(f"events it publishes: {', '.join(p['event_types'])}")
    return lines + [f"problem: {problem}" for problem in p.get("problems", [])]


def only_from_env(environ: dict[str, str] | None = None) -> set[str] | None:
    raw = (environ if environ is not None else os.environ).get("HUB_PLUGINS")
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _plugins
    if _plugins is None:
        p = Plugins()
        p.load_entry_points(only_from_env())
        _plugins = p
    return _plugins


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Forget (or replace) the process-wide plugin set; for tests and the certify command."""
    global _plugins
    _plugins = plugins


__all__ = ["BUILTIN_BLUEPRINTS", "BUILTIN_CLI", "BUILTIN_EVENTS", "GROUPS", "KINDS", "Kind", "LoadedPlugin", "ManifestError", "PluginError",
           "Plugins", "Registration", "get_plugins", "kind_lines", "reset_plugins"]
