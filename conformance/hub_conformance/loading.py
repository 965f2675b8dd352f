"""Finding the plugin to certify, and how its simulator is to be run."""
from __future__ import annotations

import importlib.metadata as md
import inspect
from dataclasses import dataclass
from typing import Any

from hub.plugins import LoadedPlugin, PluginError, Plugins
from hub.vendor import DeviceRef, VendorAdapter

from hub_conformance import hookspecs
from hub_conformance.target import Media, Target, TargetDevice, free_port


@dataclass
class Subject:
    """The plugin under certification, loaded alone (as HUB_PLUGINS=name would load it)."""

    vendor: str
    plugins: Plugins
    adapter_cls: type[VendorAdapter]
    entry_point: LoadedPlugin | None

    @property
    def manifest(self) -> Any:
        return self.adapter_cls.manifest

    @property
    def distribution(self) -> str:
        return self.entry_point.distribution if self.entry_point else ""

    @property
    def version(self) -> str:
        return self.entry_point.version if self.entry_point else ""

    def simulator_factory(self) -> Any | None:
        return self.plugins.simulators().get(self.vendor)

    def describe(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": m.name, "title": m.title, "version": m.version, "distribution": self.distribution,
                "distribution_version": self.version,
                "entry_point": self.entry_point.name if self.entry_point else None,
                "module": self.adapter_cls.__module__, "protocols": list(m.protocols),
                "device_kinds": list(m.device_kinds), "capabilities": sorted(m.capabilities)}


def _installed_vendor_entry_points() -> list[md.EntryPoint]:
    return list(md.entry_points(group="hub.vendors"))


def load_subject(vendor: str) -> Subject:
    """Load the plugin that provides `vendor` and nothing else. The entry-point name usually is
    the vendor name; when it is not, every vendor entry point is tried on its own, so a broken
    neighbour cannot stop the certification of a sound plugin."""
    errors: list[str] = []
    candidates = [ep.name for ep in _installed_vendor_entry_points()]
    order = [vendor] + [n for n in candidates if n != vendor] if vendor in candidates else candidates
    for name in order:
        plugins = Plugins()
        try:
            plugins.load_entry_points(only={name})
            found = plugins.vendors()
        except PluginError as exc:
            errors.append(str(exc))
            continue
        errors.extend(plugins.problems)  # a broken plugin is reported there, not raised
        if vendor in found:
            ep = next((p for p in plugins.loaded if p.name == name), None)
            add_conformance_hookspecs(plugins)
            return Subject(vendor, plugins, found[vendor], ep)
    installed = ", ".join(candidates) or "none"
    detail = f"; errors: {'; '.join(errors)}" if errors else ""
    raise PluginError(f"no installed plugin provides the vendor {vendor!r} "
                      f"(hub.vendors entry points: {installed}){detail}")


def add_conformance_hookspecs(plugins: Plugins) -> None:
    caller = getattr(plugins.pm.hook, "conformance_setup", None)
    if caller is None or getattr(caller, "spec", None) is None:
        plugins.pm.add_hookspecs(hookspecs)


def schema_fields(adapter_cls: type[VendorAdapter]) -> dict[str, Any]:
    schema = adapter_cls.manifest.config_schema
    return dict(schema().fields) if schema is not None else {}


def default_simulator_config(adapter_cls: type[VendorAdapter], run_id: str) -> dict[str, Any]:
    """A configuration for a simulator run of a plugin that does not implement
    conformance_setup: the schema's defaults, with a topic prefix of its own when the schema has
    one (parallel runs on one broker must not hear each other) and a free loopback port for URL
    settings without a default."""
    fields = schema_fields(adapter_cls)
    config: dict[str, Any] = {}
    if "topic_prefix" in fields:
        config["topic_prefix"] = f"hubconf/{run_id}"
    for name in ("base_url", "url", "endpoint"):
        f = fields.get(name)
        if f is not None and getattr(f, "load_default", None) in (None,) and not f.required:
            config[name] = f"http://127.0.0.1:{free_port()}"
    return _with_demanded_credentials(adapter_cls, config, run_id)


def _with_demanded_credentials(adapter_cls: type[VendorAdapter], config: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Test credentials for the credential settings the schema refuses to do without — and only
    those: inventing credentials a plugin does not demand would make SEC-AUTH-01 test a
    transport (an anonymous broker) the simulator does not control."""
    from marshmallow import ValidationError

    from hub_conformance.security import secret_fields

    schema = adapter_cls.manifest.config_schema
    if schema is None:
        return config
    secrets = set(secret_fields(schema))
    for _ in range(len(secrets) + 1):
        try:
            schema().load(dict(config))
            return config
        except ValidationError as err:
            named = err.messages if isinstance(err.messages, dict) else {}
            missing = [n for n in named if n in secrets and n not in config]
            if not missing:
                return config  # refused for another reason: the run reports it
            for name in missing:
                config[name] = f"conformance-{run_id}-{name}"
    return config


def default_devices(kinds: tuple[str, ...], run_id: str) -> list[TargetDevice]:
    """One speaker and one board, as far as the manifest drives them. Addresses carry the run
    id: simulators often use the address as the device's identity on a shared broker (an MQTT
    client id), and two runs at once must not throw each other's devices off."""
    out = []
    if "speaker" in kinds:
        out.append(TargetDevice(f"SPK-{run_id}", "speaker", "speaker-1"))
    if "led_board" in kinds:
        out.append(TargetDevice(f"LED-{run_id}", "led_board", "board-1"))
    return out


def setup_hook(subject: Subject, run_id: str, parameters: dict[str, float]) -> dict[str, Any]:
    try:
        got = subject.plugins.pm.hook.conformance_setup(vendor=subject.vendor, run_id=run_id,
                                                        parameters=dict(parameters))
    except Exception as exc:  # the plugin's own hook failing is its problem, reported as such
        raise PluginError(f"{subject.vendor}: conformance_setup failed: {type(exc).__name__}: {exc}") from exc
    if got is None:
        return {}
    if not isinstance(got, dict):
        raise PluginError(f"{subject.vendor}: conformance_setup must return a mapping or None")
    return got


def resolve_target(subject: Subject, target: Target | None, simulator: bool, run_id: str,
                   parameters: dict[str, float] | None = None) -> Target:
    """The effective target: for a simulator, the plugin's conformance_setup (or defaults) under
    whatever the target file says; for real devices, the target file alone."""
    from hub_conformance.target import parse_devices

    t = target or Target()
    fault_modes: dict[str, list[str]] = {}
    if not simulator:
        if not t.devices:
            raise PluginError("a target file with at least one device is needed without --simulator")
        media = t.media
        config = dict(t.config)
        devices = list(t.devices)
    else:
        hook = setup_hook(subject, run_id, parameters or {})
        config = dict(hook.get("config") or default_simulator_config(subject.adapter_cls, run_id))
        config.update(t.config)
        devices = list(t.devices) or (parse_devices(hook["devices"], "conformance_setup") if hook.get("devices")
                                      else default_devices(subject.manifest.device_kinds, run_id))
        media = Media.for_simulator().merged(_hook_media(hook)).merged(t.media)
        fault_modes = _hook_fault_modes(subject.vendor, hook)
    for i, d in enumerate(devices):
        if d.kind not in subject.manifest.device_kinds:
            raise PluginError(f"device {d.address}: {subject.vendor} does not drive {d.kind} devices")
        if not d.id:
            d.id = f"{d.kind}-{i + 1}"
    return Target(vendor=t.vendor, config=config, devices=devices, media=media, parameters=dict(t.parameters),
                  witness=t.witness, link_control=t.link_control, path=t.path, fault_modes=fault_modes)


def _hook_media(hook: dict[str, Any]) -> Media:
    """The media a plugin's simulator runs play (conformance_setup's `media`), instead of the suite's."""
    from hub_conformance.target import _MEDIA_KEYS

    raw = hook.get("media") or {}
    if not isinstance(raw, dict) or set(raw) - _MEDIA_KEYS:
        raise PluginError(f"conformance_setup: media may only have {', '.join(sorted(_MEDIA_KEYS))}")
    return Media(**raw)


def _hook_fault_modes(vendor: str, hook: dict[str, Any]) -> dict[str, list[str]]:
    """A simulator's own fault modes, each mapped to the requirement IDs it must make fail
    (conformance_setup's `fault_modes: {name: [IDs]}`), so the fault matrix proves them too."""
    from hub.simulation import FAULT_MODES

    from hub_conformance import catalogue

    raw = hook.get("fault_modes") or {}
    if not isinstance(raw, dict):
        raise PluginError(f"{vendor}: conformance_setup: fault_modes must map a name to requirement IDs")
    known = set(catalogue.load().requirements)
    out = {}
    for name, ids in raw.items():
        if name in FAULT_MODES:
            raise PluginError(f"{vendor}: conformance_setup: fault mode {name} is already in the hub's vocabulary")
        if not isinstance(ids, (list, tuple)) or not ids or set(ids) - known:
            raise PluginError(f"{vendor}: conformance_setup: fault mode {name} must list the catalogue's "
                              f"requirement IDs it breaks (unknown: {', '.join(sorted(set(ids or []) - known))})")
        out[str(name)] = [str(i) for i in ids]
    return out


def make_simulator(factory: Any, config: dict[str, Any], devices: list[DeviceRef],
                   faults: dict[str, set[str]] | None, heartbeat_interval_s: float) -> Any:
    """Call the factory as hub/simulation.py says; simulators whose factory takes a
    `status_interval` keyword get the suite's heartbeat interval, so the heartbeat check does not
    have to wait minutes."""
    kwargs: dict[str, Any] = {}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    if "status_interval" in params:
        kwargs["status_interval"] = heartbeat_interval_s
    return factory(config, devices, faults or None, **kwargs)


def stop_simulator(sim: Any) -> None:
    """Stop a simulator, removing what it left on a shared broker when it can."""
    stop = getattr(sim, "stop", None)
    if stop is None:
        return
    try:
        params = inspect.signature(stop).parameters
    except (TypeError, ValueError):
        params = {}
    if "clear_retained" in params:
        stop(clear_retained=True)
    else:
        stop()
