"""Value transforms (map, scale), the values a command derives, and how fields are read from
what a device sends back."""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub_profiles.template import Missing, RenderError, Template, coerce_scalar, to_text

class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # a path the device's message does not have


@dataclass(frozen=True)
class Scale:
    """Linear map from `src` to `dst`, rounding half up to an integer when `dst` is integral."""

    src: tuple[float, float]
    dst: tuple[float, float]

    def apply(self, value: Any) -> int | float:
        if isinstance(value, str):
            value = coerce_scalar(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RenderError(f"scale needs a number, got {to_text(value)!r}")
        lo, hi = sorted(self.src)
        if not lo <= value <= hi:
            # Never stretch a misreport into range: a device that says 40 on a 0–31 scale is wrong.
            raise RenderError(f"{to_text(value)} is outside the scale {fmt(self.src[0])}–{fmt(self.src[1])}")
        (a, b), (c, d) = self.src, self.dst
        out = c + (value - a) * (d - c) / (b - a)
        if all(isinstance(x, int) for x in self.dst):
            return math.floor(out + 0.5)  # half up, as hub.units does, not Python's half-to-even
        return out


def fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def same(a: Any, b: Any) -> bool:
    """Equality that does not confuse true with 1 (Python does)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def loosely_same(a: Any, b: Any) -> bool:
    """What a device echoes may be text where we sent a number ("16" for 16), or the reverse."""
    return same(a, b) or to_text(a) == to_text(b)


@dataclass(frozen=True)
class Transform:
    """`map` first, then `scale`; either may be absent."""

    mapping: tuple[tuple[Any, Any], ...] | None = None
    scale: Scale | None = None

    def apply(self, value: Any) -> Any:
        if self.mapping is not None:
            for key, out in self.mapping:
                if same(key, value) or (isinstance(value, str) and isinstance(key, (int, float))
                                        and not isinstance(key, bool) and same(coerce_scalar(value), key)):
                    value = out
                    break
            else:
                known = ", ".join(to_text(k) for k, _ in self.mapping)
                raise RenderError(f"{to_text(value)!r} is not in the map ({known})")
        if self.scale is not None:
            value = self.scale.apply(value)
        return value


@dataclass(frozen=True)
class ValueSpec:
    """A value a command sends: a template (or a literal), transformed; `default` stands in
    when a placeholder has no value in the command."""

    value: Template | Any
    transform: Transform = field(default_factory=Transform)
    default: Any = MISSING

    def evaluate(self, lookup: Callable[[str], Any]) -> Any:
        try:
            raw = self.value.render(lookup) if isinstance(self.value, Template) else self.value
        except Missing:
            if self.default is MISSING:
                raise
            return self.default
        return self.transform.apply(raw)

    @property
    def names(self) -> tuple[str, ...]:
        return self.value.names if isinstance(self.value, Template) else ()


@dataclass(frozen=True)
class Source:
    """Where a field is read: a JSON path in an MQTT message (`$` is the whole payload), a
    Modbus table and address, or a constant."""

    path: str | None = None
    table: str | None = None  # register | input_register | coil | discrete_input
    address: int | None = None
    constant: Any = MISSING

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        if self.table is not None:
            return f"{self.table} {self.address}"
        return "constant"


@dataclass(frozen=True)
class FieldSpec:
    """One DeviceStatus (or ack detail) field: read from `source`, then `bits` (an integer's set
    bits → fault names) or `map`/`scale`."""

    target: str
    source: Source
    transform: Transform = field(default_factory=Transform)
    bits: tuple[tuple[int, str], ...] | None = None
    default: Any = MISSING

    def read(self, get: Callable[[Source], Any]) -> Any:
        value = self.source.constant if self.source.constant is not MISSING else get(self.source)
        if value is MISSING:
            return self.default
        if self.bits is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise RenderError(f"{self.source.describe()}: bits need an integer, got {to_text(value)!r}")
            return [name for bit, name in self.bits if value >> bit & 1]
        return self.transform.apply(value)


def get_path(data: Any, path: str) -> Any:
    """`$` is the whole message; `a.b.0` walks objects and lists."""
    if path == "$":
        return data
    node = data
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def decode_message(payload: bytes) -> Any:
    """A device message: JSON when it parses, else its text (Tasmota answers `ON`, not JSON)."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise ValueError(f"payload is not UTF-8 ({exc.reason})") from None
    try:
        return json.loads(text)
    except ValueError:
        return text


def encode_json(value: Any) -> bytes:
    # UTF-8, never \u escapes: Vietnamese text must reach boards byte for byte.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_fields(fields: Mapping[str, FieldSpec], get: Callable[[Source], Any]) -> tuple[dict[str, Any], list[str]]:
    """Read every field; returns the values (nested under `signal` where the target says so)
    and the problems met, each naming its field."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for target, spec in fields.items():
        try:
            value = spec.read(get)
        except RenderError as exc:
            problems.append(f"{target}: {exc}")
            continue
        if value is MISSING:
            continue
        if "." in target:
            head, tail = target.split(".", 1)
            out.setdefault(head, {})[tail] = value
        else:
            out[target] = value
    return out, problems
