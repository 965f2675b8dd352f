"""A validated profile, as the drivers use it. Built only by `hub_profiles.validate`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub_profiles.template import Template
from hub_profiles.values import FieldSpec, ValueSpec

DRIVERS = ("mqtt", "modbus_tcp")
PROTOCOLS = {"mqtt": ("mqtt-3.1.1",), "modbus_tcp": ("modbus-tcp",)}
ACK_MODES = ("none", "echo", "reply")


@dataclass(frozen=True)
class Payload:
    """`text`: the template renders to the payload's text. `json`: a structure whose string
    leaves are templates, sent as compact UTF-8 JSON."""

    kind: str  # text | json
    body: Any  # Template for text; nested dict/list of Template and literals for json

    @property
    def names(self) -> tuple[str, ...]:
        out: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Template):
                out.extend(node.names)
            elif isinstance(node, dict):
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(self.body)
        return tuple(out)


@dataclass(frozen=True)
class AckSpec:
    """How a device confirms a command.

    none  — ACKED once the broker accepted the publish; the device says nothing.
    echo  — the device publishes its new state on `topic`; ACKED when every `match` path holds
            the value sent, within `timeout_s` (waited for inside send()).
    reply — the device answers on `topic` with the command id at `id_path`; PENDING until the
            listener hears it; ok when the value at `ok_path` is one of `ok_values`.
    """

    mode: str
    topic: Template | None = None
    match: tuple[tuple[str, Any], ...] = ()  # (path, Template or literal)
    timeout_s: float = 5.0
    id_path: str | None = None
    ok_path: str | None = None
    ok_values: tuple[Any, ...] = (True,)
    error_path: str | None = None
    fields: dict[str, FieldSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class MqttCommand:
    verb: str
    topic: Template
    payload: Payload
    values: dict[str, ValueSpec]
    ack: AckSpec
    retain: bool = False


@dataclass(frozen=True)
class RegisterRef:
    table: str  # register | input_register | coil | discrete_input
    address: int

    def describe(self) -> str:
        return f"{self.table} {self.address}"


@dataclass(frozen=True)
class ModbusWrite:
    ref: RegisterRef  # register or coil
    value: ValueSpec
    verify: RegisterRef | None = None  # read back after writing; must hold what was written
    verify_delay_s: float = 0.0


@dataclass(frozen=True)
class ModbusCommand:
    verb: str
    writes: tuple[ModbusWrite, ...]
    values: dict[str, ValueSpec]


@dataclass(frozen=True)
class Presence:
    topic: Template
    path: str = "$"
    online: Any = "online"
    offline: Any = "offline"


@dataclass(frozen=True)
class MqttStatus:
    topic: Template | None
    fields: dict[str, FieldSpec]
    presence: Presence | None = None


@dataclass(frozen=True)
class ModbusStatus:
    interval_s: float
    fields: dict[str, FieldSpec]


@dataclass(frozen=True)
class MqttSettings:
    prefix: str | None = None
    qos: int = 1


@dataclass(frozen=True)
class ModbusSettings:
    port: int = 502
    unit: int = 1


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    version: str
    description: str
    device_kinds: tuple[str, ...]
    capabilities: frozenset[str]
    driver: str
    settings: MqttSettings | ModbusSettings
    commands: dict[str, MqttCommand | ModbusCommand]
    status: MqttStatus | ModbusStatus | None
    simulator: dict[str, Any]
    source: str  # the file it came from
    name_line: int = 1  # where `name:` stands, for errors about the name itself

    @property
    def reply_ack(self) -> AckSpec | None:
        """The one reply-mode ack of the profile, if any (validation allows only one)."""
        for cmd in self.commands.values():
            if isinstance(cmd, MqttCommand) and cmd.ack.mode == "reply":
                return cmd.ack
        return None
