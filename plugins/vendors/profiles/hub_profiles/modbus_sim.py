"""Modbus TCP devices for a profile: one pymodbus server per device endpoint, all on one asyncio
loop in a thread of their own, on loopback only.

The register map comes from the profile (every register its commands and status name, with the
simulator section's initial values). `stuck` registers accept writes but keep their value, as
a device with a failed potentiometer does, so read-back verification can be tested.

Fault modes (hub.simulation): silent (requests get no answer), rejects_all (writes answered
with Modbus exception 4, device failure), acks_without_acting (writes confirmed but not
stored), misreports_volume (the amplifier plays at the volume written, but its volume register
reads back a fifth of the scale away).
"""
from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterable
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hub_profiles.modbus_adapter import Endpoint, parse_address
from hub_profiles.model import ModbusCommand, ModbusSettings, ModbusStatus, Profile
from hub_profiles.template import RenderError
from hub_profiles.values import MISSING

TABLES = ("coil", "discrete_input", "register", "input_register")  # pymodbus's tuple order
_BIT_TABLES = ("coil", "discrete_input")
_WRITE_FC = {5: "coil", 15: "coil", 6: "register", 16: "register"}
_READ_FC = {1: "coil", 2: "discrete_input", 3: "register", 4: "input_register"}
# Not imitated: ignores_emergency and mangles_diacritics (an amplifier plays no queue and shows
# no text), accepts_unauthenticated (Modbus TCP has no credentials to bypass), no_heartbeat (a
# polled device has no heartbeat of its own: the hub's poll is the heartbeat, and a device that
# stops answering polls is `silent`).
_BLOCK = {"coil": "c", "discrete_input": "d", "register": "h", "input_register": "i"}
FAULTS = ("silent", "rejects_all", "acks_without_acting", "misreports_volume")
OBSERVED = ("activity", "power", "volume", "brightness")  # what a witness reports (hub_conformance.witness)


def register_map(profile: Profile) -> dict[str, int]:
    """How many addresses each table needs to hold everything the profile names."""
    top = dict.fromkeys(TABLES, 0)

    def see(table: str | None, address: int | None) -> None:
        if table is not None and address is not None:
            top[table] = max(top[table], address + 1)

    for cmd in profile.commands.values():
        if isinstance(cmd, ModbusCommand):
            for w in cmd.writes:
                see(w.ref.table, w.ref.address)
                if w.verify:
                    see(w.verify.table, w.verify.address)
    if isinstance(profile.status, ModbusStatus):
        for f in profile.status.fields.values():
            see(f.source.table, f.source.address)
    for table, values in profile.simulator.items():
        for address in values:
            see(table, address)
    return top


def _volume_source(profile: Profile) -> tuple[str, int] | None:
    """The register the profile reads volume from: what misreports_volume corrupts."""
    if isinstance(profile.status, ModbusStatus) and "volume" in profile.status.fields:
        src = profile.status.fields["volume"].source
        if src.table is not None and src.address is not None:
            return src.table, src.address
    return None


def _off_by_some(profile: Profile, value: int) -> int:
    """A fifth of the volume scale away from `value`, staying within the scale."""
    lo, hi = 0, 0xFFFF
    if isinstance(profile.status, ModbusStatus) and "volume" in profile.status.fields:
        scale = profile.status.fields["volume"].transform.scale
        if scale is not None:
            lo, hi = (int(x) for x in sorted(scale.src))
    step = max(1, (hi - lo) // 5)
    return value + step if value + step <= hi else value - step


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SimModbusDevice:
    """One endpoint's registers (every unit id answers with the same ones)."""

    def __init__(self, profile: Profile, host: str, port: int, unit: int, faults: Iterable[str] = ()) -> None:
        self.profile, self.host, self.requested_port, self.unit = profile, host, port, unit
        self.port = port
        self.faults = set(faults)
        self.stuck: set[tuple[str, int]] = set()
        self.link_cut = False
        self._volume = _volume_source(profile)
        self._true_volume: int | None = None  # what a misreporting amplifier really plays at
        self.writes: list[tuple[str, int, list[Any]]] = []
        self.lock = threading.Lock()
        self.server: ModbusTcpServer | None = None
        sizes = register_map(profile)
        initial = profile.simulator

        def block(table: str) -> list[SimData]:
            size = max(16 if table in _BIT_TABLES else 1, sizes[table])
            if table in _BIT_TABLES:
                values: list[Any] = [False] * (size + (-size % 16))
            else:
                values = [0] * size
            for address, v in initial.get(table, {}).items():
                values[address] = bool(v) if table in _BIT_TABLES else int(v)
            dtype = DataType.BITS if table in _BIT_TABLES else DataType.REGISTERS
            return [SimData(0, values=values, datatype=dtype)]

        self.simdevice = SimDevice(0, simdata=tuple(block(t) for t in TABLES), action=self._action)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.unit}"

    async def _action(self, fc: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> None:
        table = _WRITE_FC.get(fc) if values else _READ_FC.get(fc)
        if table is None:
            return None
        if self.link_cut:  # unplugged: nothing reaches the device (and _trace drops any answer)
            if values:
                for i in range(len(values)):
                    values[i] = self._get(table, address + i)
            return None
        if not values:
            if "misreports_volume" in self.faults and self._volume is not None and table == self._volume[0]:
                self._misreport(start, address, count, registers)
            return None
        if "rejects_all" in self.faults:
            return ExcCodes.DEVICE_FAILURE
        with self.lock:
            self.writes.append((table, address, list(values)))
            for i in range(len(values)):
                here = (table, address + i)
                if here in self.stuck or "acks_without_acting" in self.faults:
                    values[i] = self._get(*here)  # pymodbus stores what we leave here
                elif here == self._volume:
                    self._true_volume = int(values[i])
        return None

    def _misreport(self, start: int, address: int, count: int, registers: list[int]) -> None:
        """The amplifier plays at the volume written, but its register reads another one: the
        register is set to the wrong value just before pymodbus copies the answer from it."""
        assert self._volume is not None
        at = self._volume[1]
        if not address <= at < address + count:
            return
        with self.lock:
            if self._true_volume is None:
                self._true_volume = int(registers[at - start])
            registers[at - start] = _off_by_some(self.profile, self._true_volume)

    def _trace(self, sending: bool, packet: bytes) -> bytes:
        return b"" if sending and ("silent" in self.faults or self.link_cut) else packet

    def observe(self) -> dict[str, Any]:
        """What the amplifier really does, in the hub's terms: its registers (the true volume
        where it misreports) read through the profile's status fields, which define what each
        register means. Keys it cannot tell are None."""
        out: dict[str, Any] = dict.fromkeys(OBSERVED)
        status = self.profile.status
        if not isinstance(status, ModbusStatus):
            return out
        with self.lock:
            truth = {(t, a): self._get(t, a) for f in status.fields.values()
                     if (t := f.source.table) is not None and (a := f.source.address) is not None}
            if self._true_volume is not None and self._volume is not None:
                truth[self._volume] = self._true_volume
        for key in OBSERVED:
            spec = status.fields.get(key)
            if spec is None:
                continue
            try:
                out[key] = spec.read(lambda src: truth.get((src.table, src.address), MISSING))
            except RenderError:
                continue
        return out

    def _runtime(self) -> Any:
        assert self.server is not None, "the simulator is not running"
        return self.server.context.devices[0]  # pymodbus SimCore → SimRuntime

    def _get(self, table: str, address: int) -> Any:
        start, _n, registers, _flags = self._runtime().block[_BLOCK[table]]
        if table in _BIT_TABLES:
            return bool(registers[address // 16 - start] >> (address % 16) & 1)
        return registers[address - start]

    def value(self, table: str, address: int) -> Any:
        """What the device holds now (tests look here, not through Modbus)."""
        with self.lock:
            return self._get(table, address)

    def set_value(self, table: str, address: int, value: Any) -> None:
        """Change a register as the device itself would (a fault appearing, a knob turned)."""
        with self.lock:
            start, _n, registers, _flags = self._runtime().block[_BLOCK[table]]
            if table in _BIT_TABLES:
                i, bit = address // 16 - start, address % 16
                registers[i] = registers[i] | (1 << bit) if value else registers[i] & ~(1 << bit)
            else:
                registers[address - start] = int(value)


class ProfileModbusFleet:
    """Modbus TCP devices of one profile. Give addresses (`host:port/unit`, loopback only; port
    0 picks a free one) or a count; `addresses` tells where they listen once started."""

    def __init__(self, profile: Profile, addresses: Iterable[str] = (), *, count: int = 0,
                 faults: dict[str, set[str]] | None = None) -> None:
        if profile.driver != "modbus_tcp":
            raise ValueError(f"profile {profile.name} drives {profile.driver}, not modbus_tcp")
        defaults = profile.settings if isinstance(profile.settings, ModbusSettings) else ModbusSettings()
        endpoints = [parse_address(a, defaults) for a in addresses]
        endpoints += [Endpoint("127.0.0.1", 0, defaults.unit) for _ in range(count)]
        for e in endpoints:
            if not _loopback(e.host):
                raise ValueError(f"the Modbus simulator listens on loopback only, not {e.host}")
        self.profile = profile
        faults = faults or {}
        given = list(addresses)
        self.devices = [SimModbusDevice(profile, e.host, e.port, e.unit,
                                        faults.get(given[i], ()) if i < len(given) else ())
                        for i, e in enumerate(endpoints)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._done: asyncio.Event | None = None

    @property
    def addresses(self) -> list[str]:
        return [d.address for d in self.devices]

    def device(self, address: str) -> SimModbusDevice:
        for d in self.devices:
            if d.address == address or f"{d.host}:{d.port}" == address.split("/")[0]:
                return d
        raise KeyError(address)

    def observe(self, address: str) -> dict[str, Any]:
        return self.device(address).observe()

    def cut_link(self, address: str) -> None:
        """Unplug the device: it neither acts on nor answers anything until restore_link(), and
        keeps its registers."""
        self.device(address).link_cut = True

    def restore_link(self, address: str) -> None:
        self.device(address).link_cut = False

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"sim-{self.profile.name}-modbus")
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"Modbus simulator for {self.profile.name} did not start within {timeout:g}s")
        if self._error is not None:
            self._thread.join(timeout)
            raise RuntimeError(f"Modbus simulator for {self.profile.name} failed to start: {self._error}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._done = asyncio.Event()
        try:
            for d in self.devices:
                d.server = ModbusTcpServer(d.simdevice, address=(d.host, d.requested_port), trace_packet=d._trace)
                await d.server.serve_forever(background=True)
                d.port = d.server.transport.sockets[0].getsockname()[1]  # the real port when 0 was asked
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._error = exc
            self._started.set()
            await self._shutdown()
            return
        self._started.set()
        await self._done.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        for d in self.devices:
            if d.server is not None:
                await d.server.shutdown()

    def stop(self, timeout: float = 10.0) -> None:
        loop, done = self._loop, self._done
        if loop is not None and done is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(done.set)
            except RuntimeError:  # the loop ended already
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ProfileModbusFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
