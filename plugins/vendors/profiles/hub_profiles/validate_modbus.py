"""The Modbus TCP parts of a profile: the `modbus_tcp:` settings, register writes and polling."""
from __future__ import annotations

from typing import Any

from hub_profiles.context import Known, known_names
from hub_profiles.model import ModbusCommand, ModbusSettings, ModbusStatus, ModbusWrite, RegisterRef
from hub_profiles.reader import declared_names, TABLES, Reader, describe
from hub_profiles.template import to_text
from hub_profiles.values import ValueSpec
from hub_profiles.yamlsrc import Node

WRITABLE = ("register", "coil")
WRITE_KEYS = (*WRITABLE, "value", "map", "scale", "default", "verify")
SIM_KEYS = {"registers": "register", "input_registers": "input_register", "coils": "coil",
            "discrete_inputs": "discrete_input"}


def settings(r: Reader, node: Node | None) -> ModbusSettings:
    if node is None:
        return ModbusSettings()
    spec = r.keys(node, ("port", "unit"))
    if spec is None:
        return ModbusSettings()
    port = r.number(spec["port"], lo=1, hi=65535, integer=True) if "port" in spec else 502
    unit = r.number(spec["unit"], lo=0, hi=255, integer=True) if "unit" in spec else 1
    return ModbusSettings(int(port or 502), int(unit if unit is not None else 1))


def _ref(r: Reader, node: Node, spec: dict[str, Node], tables: tuple[str, ...]) -> RegisterRef | None:
    given = [t for t in tables if t in spec]
    if len(given) != 1:
        r.error(node, f"give exactly one of {', '.join(tables)}" + (f" (got {', '.join(given)})" if given else ""))
        return None
    address = r.number(spec[given[0]], lo=0, hi=65535, integer=True)
    return RegisterRef(given[0], int(address)) if address is not None else None


def _fits(r: Reader, node: Node, table: str, value: Any) -> bool:
    """Whether a value the profile spells out (a literal, a map's output) fits the table."""
    if table == "coil":
        if not isinstance(value, bool):
            r.error(node, f"a coil takes true or false, not {to_text(value)!r}")
            return False
        return True
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        r.error(node, f"a register holds an integer 0–65535, not {to_text(value)!r}")
        return False
    return True


def _write(r: Reader, node: Node, known: dict[str, Known]) -> ModbusWrite | None:
    spec = r.keys(node, WRITE_KEYS, ("value",))
    if spec is None:
        return None
    ref = _ref(r, node, spec, WRITABLE)
    value = r.value_spec(node, spec, known)
    if ref is None or value is None:
        return None
    if not _literals_fit(r, node, spec, ref.table, value):
        return None
    verify, delay = None, 0.0
    if "verify" in spec:
        v = spec["verify"]
        if v.value is True:
            verify = ref
        elif v.is_mapping:
            vspec = r.keys(v, (*TABLES, "delay_s"))
            if vspec is None:
                return None
            verify = _ref(r, v, vspec, TABLES)
            if "delay_s" in vspec:
                d = r.number(vspec["delay_s"], lo=0, hi=10)
                delay = float(d) if d is not None else 0.0
            if verify is None:
                return None
        elif v.value is not False:
            r.error(v, f"expected true, false or {{register: N, delay_s: S}}, got {describe(v)}")
            return None
    return ModbusWrite(ref, value, verify, delay)


def _literals_fit(r: Reader, node: Node, spec: dict[str, Node], table: str, value: ValueSpec) -> bool:
    t = value.transform
    if t.scale is not None:
        dst = t.scale.dst
        if table == "coil" or not all(isinstance(x, int) and 0 <= x <= 0xFFFF for x in dst):
            r.error(spec["scale"], "a scaled value must land on integers 0–65535 in a register")
            return False
        return True
    if t.mapping is not None:
        return all(_fits(r, spec["map"], table, out) for _, out in t.mapping)
    if value.names:
        return True  # known only when the command is sent; checked then
    return _fits(r, spec["value"], table, value.value)


def command(r: Reader, verb: str, node: Node) -> ModbusCommand | None:
    spec = r.keys(node, ("write", "values"), ("write",))
    if spec is None or "write" not in spec:
        return None
    base = known_names(verb, "modbus_tcp")
    values = r.values_block(spec["values"], base) if "values" in spec else {}
    known = {**base, **{name: Known("any") for name in declared_names(spec.get("values")) if name not in base}}
    items = r.items(spec["write"])
    if spec["write"].is_list and not items:
        r.error(spec["write"], "needs at least one register or coil to write")
    writes = [_write(r, item, known) for item in items]
    if not items or any(w is None for w in writes):
        return None
    return ModbusCommand(verb, tuple(w for w in writes if w is not None), values)


def status(r: Reader, node: Node) -> ModbusStatus | None:
    spec = r.keys(node, ("interval_s", "fields"), ("fields",))
    if spec is None or "fields" not in spec:
        return None
    interval = 10.0
    if "interval_s" in spec:
        v = r.number(spec["interval_s"], lo=0.1, hi=86400)
        interval = float(v) if v is not None else interval
    return ModbusStatus(interval, r.fields(spec["fields"], TABLES))


def simulator(r: Reader, node: Node) -> dict[str, Any]:
    spec = r.keys(node, tuple(SIM_KEYS))
    out: dict[str, Any] = {}
    for key, table in (spec or {}).items():
        values: dict[int, Any] = {}
        if not table.is_mapping:
            r.error(table, f"expected addresses and values such as {{0: 1, 1: 12}}, got {describe(table)}")
            continue
        for address, v in table.items():
            if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
                r.key_error(table, address, f"{address} is not an address 0–65535")
            elif _fits(r, v, "coil" if SIM_KEYS[key] in ("coil", "discrete_input") else "register", v.value):
                values[address] = v.value
        out[SIM_KEYS[key]] = values
    return out
