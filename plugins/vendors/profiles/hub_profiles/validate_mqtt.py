"""The MQTT parts of a profile: the `mqtt:` settings, commands, acks and status."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub_profiles.context import LISTEN_NAMES, Known, known_names
from hub_profiles.model import ACK_MODES, AckSpec, MqttCommand, MqttSettings, MqttStatus, Payload, Presence
from hub_profiles.reader import declared_names, Reader, describe
from hub_profiles.template import Placeholder, Template
from hub_profiles.yamlsrc import Node

SETTINGS_KEYS = ("prefix", "qos", "ack")
COMMAND_KEYS = ("topic", "payload", "values", "ack", "retain")
ACK_KEYS = {"none": ("mode",), "echo": ("mode", "topic", "match", "timeout_s", "fields"),
            "reply": ("mode", "topic", "id", "ok", "ok_values", "error", "fields")}
FIELD_SOURCES = ("path",)
_WILDCARDS = set("+#")


def prefix_problem(prefix: str) -> str | None:
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        return "must be non-empty without a leading or trailing /"
    if _WILDCARDS & set(prefix) or "//" in prefix:
        return "must not contain +, # or an empty level"
    return None


def settings(r: Reader, node: Node | None) -> tuple[MqttSettings, Node | None]:
    if node is None:
        return MqttSettings(), None
    spec = r.keys(node, SETTINGS_KEYS)
    if spec is None:
        return MqttSettings(), None
    prefix = None
    if "prefix" in spec:
        prefix = r.text(spec["prefix"])
        if prefix is not None and (problem := prefix_problem(prefix)):
            r.error(spec["prefix"], problem)
    qos = 1
    if "qos" in spec:
        q = r.number(spec["qos"], lo=0, hi=1, integer=True)
        qos = int(q) if q is not None else 1
    return MqttSettings(prefix, qos), spec.get("ack")


def listen_topic(r: Reader, node: Node) -> Template | None:
    """A topic the hub subscribes to: only {prefix} and {address}, each a whole topic level,
    {address} exactly once, since the subscription replaces it with `+`."""
    t = r.template(node, {n: Known("text") for n in LISTEN_NAMES})
    if t is None:
        return None
    if t.names.count("address") != 1:
        r.error(node, "must contain {address} once, as a whole topic level (the hub subscribes with + there)")
        return None
    parts = t.parts
    for i, p in enumerate(parts):
        if isinstance(p, Placeholder):
            before = parts[i - 1] if i else "/"
            after = parts[i + 1] if i + 1 < len(parts) else "/"
            if not (isinstance(before, str) and before.endswith("/") and isinstance(after, str)
                    and after.startswith("/")):
                r.error(node, f"{{{p.name}}} must be a whole topic level, between slashes")
                return None
        elif _WILDCARDS & set(p):
            r.error(node, "must not contain MQTT wildcards + or #")
            return None
    return t


def _payload(r: Reader, node: Node | None, known: Mapping[str, Known]) -> Payload | None:
    if node is None:
        return Payload("text", Template.parse(""))
    if node.is_scalar:
        t = r.template(node, known)
        return Payload("text", t) if t is not None else None
    ok = True

    def walk(n: Node) -> Any:
        nonlocal ok
        if n.is_mapping:
            out = {}
            for k, v in n.items():
                if not isinstance(k, str):
                    r.key_error(n, k, f"JSON keys must be text; quote {k}")
                    ok = False
                out[str(k)] = walk(v)
            return out
        if n.is_list:
            return [walk(v) for v in n.value]
        if isinstance(n.value, str):
            t = r.template(n, known)
            ok = ok and t is not None
            return t
        return n.value

    body = walk(node)
    return Payload("json", body) if ok else None


def ack(r: Reader, node: Node | None, carried: set[str], where: Node) -> AckSpec | None:
    """`none`, or {mode: echo|reply, …}. `carried` are the placeholders the command's topic and
    payload put on the wire: all a device can echo."""
    if node is None or node.value == "none":
        return AckSpec("none")
    if not node.is_mapping:
        r.error(node, f"expected none or a mapping with mode echo or reply, got {describe(node)}")
        return None
    mode_node = node.value.get("mode")
    mode = mode_node.value if mode_node is not None else None
    if mode not in ACK_MODES:
        r.error(mode_node or node, f"mode must be one of {', '.join(ACK_MODES)}",
                field=f"{node.path}.mode")
        return None
    required = {"none": (), "echo": ("topic", "match"), "reply": ("topic", "id", "ok")}[mode]
    spec = r.keys(node, ACK_KEYS[mode], required)
    if spec is None or any(k not in spec for k in required):
        return None
    if mode == "none":
        return AckSpec("none")
    topic = listen_topic(r, spec["topic"])
    fields = r.fields(spec["fields"], FIELD_SOURCES) if "fields" in spec else {}
    if mode == "echo":
        return _echo(r, spec, topic, fields, carried)
    if "command_id" not in carried:
        r.error(where, "ack mode reply needs {command_id} in the topic or payload, so the device can answer it")
        return None
    id_path, ok_path = r.path(spec["id"]), r.path(spec["ok"])
    error_path = r.path(spec["error"]) if "error" in spec else None
    ok_values: tuple[Any, ...] = (True,)
    if "ok_values" in spec:
        items = r.items(spec["ok_values"])
        if not items or any(not i.is_scalar for i in items):
            r.error(spec["ok_values"], "expected a non-empty list of plain values")
            return None
        ok_values = tuple(i.value for i in items)
    if topic is None or id_path is None or ok_path is None:
        return None
    return AckSpec("reply", topic, id_path=id_path, ok_path=ok_path, ok_values=ok_values,
                   error_path=error_path, fields=fields)


def _echo(r: Reader, spec: dict[str, Node], topic: Template | None, fields: dict, carried: set[str]) -> AckSpec | None:
    timeout = 5.0
    if "timeout_s" in spec:
        t = r.number(spec["timeout_s"], lo=0.1, hi=120)
        timeout = float(t) if t is not None else timeout
    match_node = spec["match"]
    if not match_node.is_mapping or not match_node.value:
        r.error(match_node, "expected paths and the values the device reports, such as {POWER: \"{state}\"}")
        return None
    match: list[tuple[str, Any]] = []
    for path, v in match_node.items():
        path_ok = isinstance(path, str) and path and (path == "$" or all(path.split(".")))
        if not path_ok:
            r.key_error(match_node, path, f"bad path {path!r}")
            continue
        if isinstance(v.value, str):
            t = r.template(v, {n: Known("any") for n in carried})
            if t is None:
                continue
            match.append((path, t))
        elif v.is_scalar:
            match.append((path, v.value))
        else:
            r.error(v, f"expected a template or a plain value, got {describe(v)}")
    if topic is None or len(match) != len(match_node.value):
        return None
    return AckSpec("echo", topic, tuple(match), timeout, fields=fields)


def command(r: Reader, verb: str, node: Node, default_ack: Node | None) -> MqttCommand | None:
    spec = r.keys(node, COMMAND_KEYS, ("topic",))
    if spec is None or "topic" not in spec:
        return None
    base = known_names(verb, "mqtt")
    values = r.values_block(spec["values"], base) if "values" in spec else {}
    known = {**base, **{name: Known("any") for name in declared_names(spec.get("values")) if name not in base}}
    topic = r.template(spec["topic"], known)
    payload = _payload(r, spec.get("payload"), known)
    retain = False
    if "retain" in spec:
        retain = bool(r.boolean(spec["retain"]))
    carried = set(topic.names if topic else ()) | set(payload.names if payload else ())
    where = spec.get("payload") or spec["topic"]
    ack_spec = ack(r, spec.get("ack", default_ack), carried, where)
    if topic is None or payload is None or ack_spec is None:
        return None
    return MqttCommand(verb, topic, payload, values, ack_spec, retain)


def status(r: Reader, node: Node) -> MqttStatus | None:
    spec = r.keys(node, ("topic", "fields", "presence"))
    if spec is None:
        return None
    topic = listen_topic(r, spec["topic"]) if "topic" in spec else None
    if "fields" in spec and "topic" not in spec:
        r.error(node, "is required when fields are given", field=f"{node.path}.topic")
    fields = r.fields(spec["fields"], FIELD_SOURCES) if "fields" in spec else {}
    presence = None
    if "presence" in spec:
        p = r.keys(spec["presence"], ("topic", "path", "online", "offline"), ("topic",))
        if p is not None and "topic" in p:
            ptopic = listen_topic(r, p["topic"])
            path = r.path(p["path"]) if "path" in p else "$"
            online = p["online"].plain() if "online" in p else "online"
            offline = p["offline"].plain() if "offline" in p else "offline"
            if ptopic is not None and path is not None:
                presence = Presence(ptopic, path, online, offline)
    return MqttStatus(topic, fields, presence)


def simulator(r: Reader, node: Node) -> dict[str, Any]:
    spec = r.keys(node, ("state", "status_interval_s"))
    if spec is None:
        return {}
    out: dict[str, Any] = {}
    if "state" in spec:
        if spec["state"].is_mapping:
            out["state"] = spec["state"].plain()
        else:
            r.error(spec["state"], "expected a mapping (the device's state as it reports it), "
                                   f"got {describe(spec['state'])}")
    if "status_interval_s" in spec:
        v = r.number(spec["status_interval_s"], lo=0.05, hi=3600)
        if v is not None:
            out["status_interval_s"] = float(v)
    return out
