"""What is certified: the plugin's configuration, the devices, test media, optional witness and
link control. Read from a target YAML file, or made up for a simulator run.

    vendor: acme_speaker                # optional; must match the plugin certified
    config:                             # the adapter's configuration; "${ENV}" reads a secret
      host: 10.20.0.5                   #   from the environment, "{run_id}" is unique per run,
      username: hub                     #   "{free_port}" a free loopback port
      password: ${ACME_PASSWORD}
    devices:
      - address: "860123456789012"      # as the plugin addresses it
        kind: speaker                   # speaker | led_board
        id: SPK-1                       # optional, the hub's id
        capabilities: [audio.play_url]  # optional, narrower than the manifest
        config: {}                      # optional, per-device settings
    media:                              # what real devices play; the simulator needs none
      audio_url: https://files.example/test-60s.mp3
      audio_duration_s: 60
      short_audio_url: https://files.example/test-5s.mp3
      short_audio_duration_s: 5
      stream_url: http://radio.example/live
    parameters: {heartbeat_interval_s: 60}
    witness: acme_rig.witness:make       # optional "module:callable", see hub_conformance.witness
    link_control: acme_rig.link:make     # optional "module:callable"
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.capabilities import CAPABILITIES, DEVICE_KINDS
from hub.ports import free_port

_ENV_REF = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")
_KNOWN_KEYS = {"vendor", "config", "devices", "media", "parameters", "witness", "link_control"}
_MEDIA_KEYS = {"audio_url", "audio_duration_s", "short_audio_url", "short_audio_duration_s", "stream_url"}


class TargetError(ValueError):
    """The target file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Media:
    audio_url: str | None = None
    audio_duration_s: float | None = None
    short_audio_url: str | None = None
    short_audio_duration_s: float | None = None
    stream_url: str | None = None

    @classmethod
    def for_simulator(cls) -> Media:
        # Simulators do not fetch media, so nothing listens at these addresses (port 9 is discard).
        # The clips' lengths are stretched on a loaded test machine (hub.testing.time_scale): a
        # short clip must outlast the sends that PRIO-02 makes while it plays.
        from hub.testing import scaled

        return cls("http://127.0.0.1:9/hub-conformance/long.mp3", scaled(30.0),
                   "http://127.0.0.1:9/hub-conformance/short.mp3", scaled(2.0),
                   "http://127.0.0.1:9/hub-conformance/live")

    def merged(self, other: Media) -> Media:
        return Media(**{k: getattr(other, k) if getattr(other, k) is not None else getattr(self, k)
                        for k in _MEDIA_KEYS})


@dataclass
class TargetDevice:
    address: str
    kind: str
    id: str = ""
    capabilities: list[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    vendor: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    devices: list[TargetDevice] = field(default_factory=list)
    media: Media = field(default_factory=Media)
    parameters: dict[str, Any] = field(default_factory=dict)
    witness: str | None = None
    link_control: str | None = None
    path: str | None = None
    # a simulator's own fault modes (conformance_setup's `fault_modes`): name -> requirement ids it breaks
    fault_modes: dict[str, list[str]] = field(default_factory=dict)




def expand(value: Any, where: str, run_id: str, port: list[int]) -> Any:
    """${ENV} secrets, {run_id} and {free_port} placeholders, recursively."""
    if isinstance(value, dict):
        return {k: expand(v, f"{where}.{k}", run_id, port) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{where}[{i}]", run_id, port) for i, v in enumerate(value)]
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        if m:
            if m.group(1) not in os.environ:
                raise TargetError(f"{where}: environment variable {m.group(1)} is not set")
            return os.environ[m.group(1)]
        if "{free_port}" in value:
            if not port:
                port.append(free_port())
            value = value.replace("{free_port}", str(port[0]))
        return value.replace("{run_id}", run_id)
    return value


def parse_devices(raw: Any, where: str) -> list[TargetDevice]:
    if not isinstance(raw, list):
        raise TargetError(f"{where}: devices must be a list")
    out, seen = [], set()
    for i, d in enumerate(raw):
        at = f"{where}.devices[{i}]"
        if not isinstance(d, dict) or not d.get("address") or d.get("kind") not in DEVICE_KINDS:
            raise TargetError(f"{at}: needs an address and a kind ({' or '.join(DEVICE_KINDS)})")
        caps = d.get("capabilities")
        if caps is not None:
            if not isinstance(caps, list):
                raise TargetError(f"{at}.capabilities: must be a list")
            unknown = sorted(set(caps) - CAPABILITIES.keys())
            if unknown:
                raise TargetError(f"{at}.capabilities: not in the hub's vocabulary: {', '.join(unknown)}")
        device = TargetDevice(str(d["address"]), d["kind"], str(d.get("id") or ""), caps, dict(d.get("config") or {}))
        if device.address in seen:
            raise TargetError(f"{at}: address {device.address} appears twice")
        seen.add(device.address)
        out.append(device)
    return out


def load(path: str | Path, run_id: str) -> Target:
    p = Path(path)
    if not p.is_file():
        raise TargetError(f"{p}: no such target file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TargetError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TargetError(f"{p}: must be a mapping at the top level")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise TargetError(f"{p}: unknown keys: {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_KEYS))})")
    data = expand(data, str(p), run_id, [])
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise TargetError(f"{p}: config must be a mapping")
    media_raw = data.get("media") or {}
    if not isinstance(media_raw, dict) or set(media_raw) - _MEDIA_KEYS:
        raise TargetError(f"{p}: media may only have {', '.join(sorted(_MEDIA_KEYS))}")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise TargetError(f"{p}: parameters must be a mapping")
    devices = parse_devices(data["devices"], str(p)) if "devices" in data else []
    return Target(vendor=data.get("vendor"), config=dict(config), devices=devices, media=Media(**media_raw),
                  parameters=dict(params), witness=data.get("witness"), link_control=data.get("link_control"),
                  path=str(p.resolve()))
