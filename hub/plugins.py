"""Finds plugins through entry points and collects what they register.

Built-in plugins are ordinary distributions under plugins/, found exactly like a vendor's.
HUB_PLUGINS=name1,name2 restricts loading to those entry-point names (to certify one alone);
HUB_PLUGINS= (empty) loads none.
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
from hub.vendor import ManifestError, VendorAdapter

# hub.tools: plugins that only add commands (certification, scaffolding) through register_commands.
log = logging.getLogger(__name__)

GROUPS = ("hub.vendors", "hub.sources", "hub.outputs", "hub.tools")

# The hub's own API resources and command groups: modules with hookimpls, registered into the plugin
# manager exactly like a third-party plugin (as datasette's DEFAULT_PLUGINS), always, and listed first.
# Named by dotted path and imported when first asked for: this module sits below hub.api and hub.cli
# in the layering, and a worker that never serves the API need not import flask.
BUILTIN_BLUEPRINTS = ("hub.api.areas", "hub.api.devices", "hub.api.groups", "hub.api.contents", "hub.api.commands",
                      "hub.api.plugins", "hub.api.health", "hub.api.auth", "hub.api.users", "hub.api.audit",
                      "hub.api.ingest")
BUILTIN_CLI = ("hub.cli.database", "hub.cli.fleet", "hub.cli.commands", "hub.cli.plugins", "hub.cli.schemas",
               "hub.cli.processes", "hub.cli.ingest", "hub.cli.demo", "hub.cli.admin", "hub.cli.contents")


@dataclass
class LoadedPlugin:
    name: str
    group: str
    distribution: str
    version: str
    module: Any = field(repr=False, default=None)


@dataclass
class Registration:
    """One thing a plugin registered through register_blueprints or register_cli_groups."""
    plugin: str  # the plugin's name (a built-in's dotted module name)
    item: Any  # the blueprint or click command
    rules: Any = None  # a blueprint's permission rules


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered something that breaks the contract."""


class Plugins:
    """The plugin manager plus what the plugins registered. Build one with `load()`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("hub")
        self.pm.add_hookspecs(hookspecs)
        self.loaded: list[LoadedPlugin] = []
        self.problems: list[str] = []  # what was refused while loading, for `hub plugins`
        self._vendors: dict[str, type[VendorAdapter]] | None = None

    def register_module(self, module: Any, name: str, group: str = "hub.vendors",
                        distribution: str = "", version: str = "") -> None:
        """Register a plugin module directly (how tests add one without installing it)."""
        self.pm.register(module, name=name)
        self.loaded.append(LoadedPlugin(name, group, distribution or name, version, module))
        self._vendors = None

    def report(self, problem: str) -> None:
        """Note something refused (once), for the log and `hub plugins`."""
        if problem not in self.problems:
            log.error(problem)
            self.problems.append(problem)

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
                self.report(f"plugin {impl.plugin_name}: {hook_name} failed and is skipped: {exc}")
                continue
            found.extend(mine)
        return found

    def load_entry_points(self, only: set[str] | None = None) -> None:
        for group in GROUPS:
            for ep in md.entry_points(group=group):
                # HUB_PLUGINS narrows the plugins that drive devices; tools (certify…) stay available
                if only is not None and ep.name not in only and group != "hub.tools":
                    continue
                if self.pm.has_plugin(ep.name):
                    continue
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin must not take the others down with it
                    problem = f"plugin {ep.name} ({group}) failed to import and is skipped: {exc}"
                    log.error(problem)
                    self.problems.append(problem)
                    continue
                dist = ep.dist.name if ep.dist else ep.name
                version = ep.dist.version if ep.dist else ""
                self.register_module(module, ep.name, group, dist, version)

    def vendors(self) -> dict[str, type[VendorAdapter]]:
        """Vendor adapter classes by manifest name."""
        if self._vendors is None:
            found: dict[str, type[VendorAdapter]] = {}

            def register(cls: type[VendorAdapter]) -> None:
                manifest = getattr(cls, "manifest", None)
                if manifest is None or not issubclass(cls, VendorAdapter):
                    raise PluginError(f"{cls!r} is not a VendorAdapter with a manifest")
                if manifest.name in found and found[manifest.name] is not cls:
                    # Keep the first: one clash must not take every other vendor down with it.
                    problem = (f"{cls.__module__}.{cls.__qualname__} claims the vendor name {manifest.name},"
                               f" already taken by {found[manifest.name].__module__}; ignored")
                    log.error(problem)
                    self.problems.append(problem)
                    return
                found[manifest.name] = cls

            self.pm.hook.register_vendors(register=register)
            self._vendors = found
        return self._vendors

    def simulators(self) -> dict[str, Any]:
        """Simulator factories by vendor name (for the demo, benchmarks and certification)."""
        found: dict[str, Any] = {}

        def register(vendor: str, factory: Any) -> None:
            found[vendor] = factory

        self.pm.hook.register_simulators(register=register)
        return found

    def vendor(self, name: str) -> type[VendorAdapter]:
        try:
            return self.vendors()[name]
        except KeyError:
            raise PluginError(f"no vendor plugin named {name!r} is installed"
                              f" (installed: {', '.join(sorted(self.vendors())) or 'none'})") from None

    def describe(self) -> list[dict[str, Any]]:
        """Installed plugins with versions and, for vendors, their manifests."""
        out = []
        vendor_by_module = {}
        for cls in self.vendors().values():
            vendor_by_module.setdefault(cls.__module__.split(".")[0], []).append(cls)
        for p in self.loaded:
            entry: dict[str, Any] = {"name": p.name, "group": p.group, "distribution": p.distribution,
                                     "version": p.version}
            top = getattr(p.module, "__name__", "").split(".")[0]
            adapters = vendor_by_module.get(top, [])
            if adapters:
                entry["vendors"] = [a.manifest.to_dict() for a in adapters]
            out.append(entry)
        return out


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


__all__ = ["BUILTIN_BLUEPRINTS", "BUILTIN_CLI", "GROUPS", "LoadedPlugin", "ManifestError", "PluginError", "Plugins", "Registration", "get_plugins", "reset_plugins"]
