"""A profile file → a `Profile`, or every problem with it as `file:line: field: message`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hub.capabilities import CAPABILITIES, DEVICE_KINDS, VERB_CAPABILITIES, VERBS

from hub_profiles import validate_modbus, validate_mqtt
from hub_profiles.model import DRIVERS, ModbusStatus, MqttCommand, MqttSettings, MqttStatus, Profile
from hub_profiles.reader import Reader
from hub_profiles.yamlsrc import Node, ProfileError, parse

NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
TOP_KEYS = ("name", "title", "version", "description", "device_kinds", "capabilities", "driver", *DRIVERS,
            "commands", "status", "simulator")
REQUIRED = ("name", "title", "version", "device_kinds", "capabilities", "driver", "commands")
# Capabilities that promise status a profile must then say how to read.
STATUS_NEEDS = {"status.signal": ("signal.network", "signal.rssi_dbm", "signal.quality"),
                "status.faults": ("faults",)}


def load_file(path: Path | str, display: str | None = None) -> tuple[Profile | None, list[ProfileError]]:
    """Read and validate one profile file; `display` is how errors name it (the path as given)."""
    file = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ProfileError(file, 0, "(file)", f"cannot read it: {exc}")]
    return load_text(text, file)


def load_text(text: str, file: str) -> tuple[Profile | None, list[ProfileError]]:
    root, problems = parse(text, file)
    if root is None:
        return None, problems
    r = Reader(file)
    r.problems.extend(problems)
    profile = _profile(r, root)
    unique = _dedupe(r.problems)
    return (profile if not unique else None), unique


def _dedupe(problems: list[ProfileError]) -> list[ProfileError]:
    """A shared spec (mqtt.ack) is checked once per command using it; say each thing once."""
    seen: set[str] = set()
    out = []
    for p in sorted(problems, key=lambda p: p.line):
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _profile(r: Reader, root: Node) -> Profile | None:
    top = r.keys(root, TOP_KEYS, REQUIRED)
    if top is None:
        return None
    name = _name(r, top.get("name"))
    title = r.text(top["title"]) if "title" in top else None
    version = _version(r, top.get("version"))
    description = r.text(top["description"], empty_ok=True) if "description" in top else ""
    kinds = _kinds(r, top.get("device_kinds"))
    caps = _capabilities(r, top.get("capabilities"))
    driver = _driver(r, top)
    if driver is None:
        return None
    settings: Any
    if driver == "mqtt":
        settings, default_ack = validate_mqtt.settings(r, top.get("mqtt"))
    else:
        settings, default_ack = validate_modbus.settings(r, top.get("modbus_tcp")), None
    commands = _commands(r, top.get("commands"), driver, default_ack)
    status = _status(r, top.get("status"), driver)
    simulator: dict[str, Any] = {}
    if "simulator" in top:
        simulator = (validate_mqtt.simulator if driver == "mqtt" else validate_modbus.simulator)(r, top["simulator"])
    if caps is not None and "commands" in top and top["commands"].is_mapping:
        verbs = [v for v in top["commands"].value if v in VERBS]
        _consistent(r, top, caps, verbs, status)
    if driver == "mqtt" and commands:
        _prefix_known(r, top, settings, commands, status)
    if r.problems or None in (name, title, version, kinds, caps, commands):
        return None
    return Profile(name=name, title=title, version=version, description=description or "",
                   device_kinds=tuple(kinds), capabilities=frozenset(caps), driver=driver, settings=settings,
                   commands=commands, status=status, simulator=simulator, source=r.file,
                   name_line=top["name"].line)


def _name(r: Reader, node: Node | None) -> str | None:
    if node is None:
        return None
    name = r.text(node)
    if name is not None and not NAME.match(name):
        r.error(node, f"{name!r} cannot be a vendor name: use 2–64 lower-case letters, digits and _, "
                      "starting with a letter")
        return None
    return name


def _version(r: Reader, node: Node | None) -> str | None:
    if node is None:
        return None
    if isinstance(node.value, float):
        # YAML reads 1.10 as the number 1.1; a version is text.
        r.error(node, f"write the version as text in quotes (\"{node.value}\" is how YAML read it)")
        return None
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        return str(node.value)
    return r.text(node)


def _kinds(r: Reader, node: Node | None) -> list[str] | None:
    if node is None:
        return None
    items = r.items(node)
    if node.is_list and not items:
        r.error(node, "name at least one device kind")
    out = []
    for item in items:
        if item.value in DEVICE_KINDS:
            out.append(item.value)
        else:
            r.error(item, f"{item.value} is not a device kind ({', '.join(DEVICE_KINDS)})", field="device_kinds")
    return out if items and len(out) == len(items) else None


def _capabilities(r: Reader, node: Node | None) -> dict[str, Node] | None:
    """Declared capabilities with their nodes, so later checks can point at the line."""
    if node is None:
        return None
    items = r.items(node)
    out: dict[str, Node] = {}
    ok = node.is_list
    for item in items:
        if isinstance(item.value, str) and item.value in CAPABILITIES:
            out[item.value] = item
        else:
            ok = False
            r.error(item, f"{item.value} is not in the vocabulary", field="capabilities")
    return out if ok else None


def _driver(r: Reader, top: dict[str, Node]) -> str | None:
    node = top.get("driver")
    if node is None:
        return None
    if node.value not in DRIVERS:
        r.error(node, f"{node.value} is not a driver ({', '.join(DRIVERS)})")
        return None
    for other in DRIVERS:
        if other != node.value and other in top:
            r.error(top[other], f"settings for {other}, but the driver is {node.value}")
    return node.value


def _commands(r: Reader, node: Node | None, driver: str, default_ack: Node | None) -> dict[str, Any] | None:
    if node is None:
        return None
    if not node.is_mapping or not node.value:
        r.error(node, "expected one entry per hub verb, such as power: or set_volume:")
        return None
    out: dict[str, Any] = {}
    ok = True
    for verb, spec in node.items():
        if verb not in VERBS:
            r.key_error(node, verb, f"unknown verb {verb} (the hub's verbs: {', '.join(VERBS)})")
            ok = False
            continue
        cmd = (validate_mqtt.command(r, verb, spec, default_ack) if driver == "mqtt"
               else validate_modbus.command(r, verb, spec))
        if cmd is None:
            ok = False
        else:
            out[verb] = cmd
    if driver == "mqtt":
        _one_reply(r, node, out)
    return out if ok else None


def _one_reply(r: Reader, node: Node, commands: dict[str, Any]) -> None:
    """The listener hears a reply before it knows which command it answers, so a profile has one
    reply format."""
    first: tuple[str, Any] | None = None
    for verb, cmd in commands.items():
        if cmd.ack.mode != "reply":
            continue
        if first is None:
            first = (verb, cmd.ack)
        elif cmd.ack != first[1]:
            r.error(node.value[verb], f"every reply ack of a profile must be the same (put it in mqtt.ack); "
                                      f"this one differs from commands.{first[0]}.ack",
                    field=f"{node.value[verb].path}.ack")


def _status(r: Reader, node: Node | None, driver: str) -> MqttStatus | ModbusStatus | None:
    if node is None:
        return None
    return validate_mqtt.status(r, node) if driver == "mqtt" else validate_modbus.status(r, node)


def _consistent(r: Reader, top: dict[str, Node], caps: dict[str, Node], commands: list[str],
                status: MqttStatus | ModbusStatus | None) -> None:
    """Capabilities and commands must agree: dispatch sends a verb only to devices with its
    capabilities, and a declared capability without its command would fail every delivery."""
    cmd_node = top["commands"]
    for verb in commands:
        lacking = sorted(VERB_CAPABILITIES[verb] - caps.keys())
        if lacking:
            r.key_error(cmd_node, verb, f"{verb} needs the capability {', '.join(lacking)}, which capabilities "
                                        "does not declare (the hub would never send it)")
    for cap, item in caps.items():
        verbs = [v for v in VERBS if cap in VERB_CAPABILITIES[v]]
        missing = [v for v in verbs if v not in commands]
        if verbs and missing:
            r.error(item, f"{cap} is declared but commands has no {', '.join(missing)}", field="capabilities")
        fields = status.fields if status is not None else {}
        if cap in STATUS_NEEDS and not any(f in fields for f in STATUS_NEEDS[cap]):
            r.error(item, f"{cap} is declared but status.fields maps none of {', '.join(STATUS_NEEDS[cap])}",
                    field="capabilities")
        if cap == "status.heartbeat" and status is None:
            r.error(item, "status.heartbeat is declared but the profile has no status section", field="capabilities")


def _prefix_known(r: Reader, top: dict[str, Node], settings: MqttSettings, commands: dict[str, Any],
                  status: MqttStatus | None) -> None:
    if settings.prefix:
        return
    templates = [c.topic for c in commands.values() if isinstance(c, MqttCommand)]
    templates += [c.ack.topic for c in commands.values() if isinstance(c, MqttCommand) and c.ack.topic]
    if status is not None:
        templates += [t for t in (status.topic, status.presence.topic if status.presence else None) if t]
    if any("prefix" in t.names for t in templates):
        where = top.get("mqtt") or top["driver"]
        r.error(where, "topics use {prefix} but mqtt.prefix gives no default (the hub's config may still "
                       "override it)", field="mqtt.prefix")
