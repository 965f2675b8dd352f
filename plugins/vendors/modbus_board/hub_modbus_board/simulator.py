"""A Modbus TCP controller with several units, served by pymodbus from its own event-loop thread;
and `hub-modbus-board-sim`, the same from the command line.

Never imports `hub`: it runs on a field engineer's laptop to rehearse a commune's set-up.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hub_modbus_board.addressing import parse_address
from hub_modbus_board.board import ALARMS, FAULTS, BoardUnit, UnitSpec, UnitState
from hub_modbus_board.registers import HR_COMMAND_SEQ, HR_TEXT, IR_TEXT, TEXT_REGISTERS, VOLUME_MAX

log = logging.getLogger(__name__)

_REGISTER_FUNCTIONS = {3, 4, 6, 16, 23}
_WRITES = {6, 16, 23}


def _regs(first: int, count: int) -> SimData:
    return SimData(first, count=count, datatype=DataType.REGISTERS)


def _layout() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """(coils, discrete inputs, holding, input). Addresses outside these answer exception 2
    before the firmware is asked, like the real controller."""
    bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
    holding = [_regs(0, 7), _regs(HR_TEXT, TEXT_REGISTERS), _regs(HR_COMMAND_SEQ, 3)]
    inputs = [_regs(0, 9), _regs(IR_TEXT, TEXT_REGISTERS)]
    return bits, list(bits), holding, inputs


class BoardSim:
    """Units behind one host:port. `port=0` takes a free port; `.port` is known after start().
    Units keep their state across stop()/start(), like a controller rebooting with its
    settings in flash."""

    def __init__(self, units: Iterable[int | UnitSpec] = (1,), host: str = "127.0.0.1", port: int = 0) -> None:
        specs = [u if isinstance(u, UnitSpec) else UnitSpec(int(u)) for u in units]
        ids = [s.unit for s in specs]
        if not specs or len(set(ids)) != len(ids) or not all(1 <= i <= 255 for i in ids):
            raise ValueError(f"units must be distinct ids 1-255, got {ids}")
        self.host, self.port = host, port
        self._units = {s.unit: BoardUnit(s) for s in specs}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | None = None
        self.connections = 0  # TCP connections accepted since construction

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> BoardSim:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run, args=(loop,), name=f"board-sim-{self.host}:{self.port}",
                                  daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout)
        except BaseException:
            self.stop(timeout)
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> BoardSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    async def _serve(self) -> None:
        devices = [SimDevice(unit, simdata=_layout(), action=partial(self._action, unit)) for unit in self._units]
        # Unit 0 stands for "any other id": a gateway answers 0x0B for a unit it cannot reach.
        devices.append(SimDevice(0, simdata=_layout(), action=self._no_such_unit))
        server = ModbusTcpServer(devices, address=(self.host, self.port), trace_packet=self._trace_packet,
                                 trace_connect=self._trace_connect)
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc}") from None
        self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._server = server

    async def _shutdown(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the server's hooks (loop thread) ---------------------------------------------------------

    async def _action(self, unit: int, function_code: int, start: int, address: int, count: int,
                      registers: list[int], values: list[int] | list[bool] | None) -> ExcCodes | None:
        board = self._units[unit]
        if board.unresponsive:
            return ExcCodes.DEVICE_BUSY  # not acted on; _trace_packet swallows the answer
        if values is None and function_code in _REGISTER_FUNCTIONS:
            # Writes read back through here too (FC6 echoes the register, FC23 reads after writing).
            got = (board.read_input if function_code == 4 else board.read_holding)(address, count)
            if isinstance(got, int):
                return ExcCodes(got)
            # Serve reads from the unit model: pymodbus's own buffer is never the truth here.
            registers[address - start:address - start + count] = got
            return None
        if values is not None and function_code in _WRITES:
            code = board.write_holding(address, [int(v) for v in values])
            return ExcCodes(code) if code else None
        return ExcCodes.ILLEGAL_FUNCTION

    async def _no_such_unit(self, *_args: Any) -> ExcCodes:
        return ExcCodes.GATEWAY_NO_RESPONSE

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        # MBAP header: transaction(2) protocol(2) length(2) unit(1). An empty send is no answer.
        if sending and len(data) > 6:
            board = self._units.get(data[6])
            if board is not None and board.silent:
                return b""
        return data

    # -- inspection and fault switches ----------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def address(self, unit: int) -> str:
        """The hub device address of `unit`: host:port/unit."""
        self._board(unit)
        return f"{self.endpoint}/{unit}"

    @property
    def units(self) -> list[int]:
        return sorted(self._units)

    def unit(self, unit: int) -> UnitState:
        """What the unit does now: text decoded, brightness, power, volume (device steps)…"""
        return self._board(unit).state()

    def set_faults(self, unit: int, **flags: bool) -> None:
        """Fault switches: unresponsive (neither acts nor answers), silent (acts, never answers),
        exception_on_write (exception 4), wrong_volume, mangle_text, ack_without_acting,
        no_heartbeat."""
        self._board(unit).set_faults(**flags)

    def cut_link(self, unit: int) -> None:
        """Unplug the unit from the controller's bus: it neither acts nor answers until
        restore_link(), and keeps its state (its heartbeat counter runs on)."""
        self._board(unit).link_cut = True

    def restore_link(self, unit: int) -> None:
        self._board(unit).link_cut = False

    def set_alarms(self, unit: int, **flags: bool) -> None:
        """Fault bits the unit reports: amplifier_overheat, speaker_line_open, mains_lost."""
        self._board(unit).set_alarms(**flags)

    def _board(self, unit: int) -> BoardUnit:
        try:
            return self._units[unit]
        except KeyError:
            raise KeyError(f"no unit {unit} on {self.endpoint} (units: {self.units})") from None


class BoardFleet:
    """Several controllers started and stopped together (what the simulator hook returns)."""

    def __init__(self, sims: Sequence[BoardSim]) -> None:
        self.sims = list(sims)

    def start(self, timeout: float = 10.0) -> BoardFleet:
        try:
            for sim in self.sims:
                sim.start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for sim in self.sims:
            sim.stop(timeout)

    def __enter__(self) -> BoardFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _unit_of(self, address: str) -> tuple[BoardSim, int]:
        parsed = parse_address(address)
        return self.sim(str(parsed.endpoint)), parsed.unit

    def observe(self, address: str) -> dict[str, Any]:
        """What someone in front of the unit sees and hears, in the hub's terms (the
        certification suite's witness): what it really does, not what it reports — volume on
        the hub's 0–100 scale, activity as the adapter names it (off, showing, idle)."""
        sim, unit = self._unit_of(address)
        st = sim.unit(unit)
        activity = "off" if not st.power else ("showing" if st.text_bytes else "idle")
        return {"activity": activity, "source": None, "volume": int(st.volume * 100 / VOLUME_MAX + 0.5),
                "brightness": st.brightness, "power": st.power, "led_text": st.text}

    def cut_link(self, address: str) -> None:
        sim, unit = self._unit_of(address)
        sim.cut_link(unit)

    def restore_link(self, address: str) -> None:
        sim, unit = self._unit_of(address)
        sim.restore_link(unit)

    def sim(self, endpoint: str) -> BoardSim:
        for sim in self.sims:
            if sim.endpoint == endpoint:
                return sim
        raise KeyError(f"no simulated controller at {endpoint}")


# -- command line -------------------------------------------------------------------------------

def _ids(text: str) -> list[int]:
    """"1-4,7" → [1, 2, 3, 4, 7]."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _switches(items: list[str], known: Sequence[str], what: str) -> list[tuple[int, str]]:
    out = []
    for item in items:
        unit, _, name = item.partition(":")
        if not unit.isdigit() or name not in known:
            raise argparse.ArgumentTypeError(
                f"--{what} {item!r}: expected UNIT:NAME with NAME one of {', '.join(known)}")
        out.append((int(unit), name))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub-modbus-board-sim",
                                description="Simulate a Modbus TCP LED-board/amplifier controller with several units.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5020, help="TCP port, 0 for any free one (default 5020)")
    p.add_argument("--units", default="1", help="unit ids, e.g. 1-4,7 (default 1)")
    p.add_argument("--ascii", default="", help="units whose board cannot show diacritics, e.g. 3,4")
    p.add_argument("--kind", default="led_board", choices=("led_board", "speaker"))
    p.add_argument("--firmware", default="1.4.2", help="version the units report (default 1.4.2)")
    p.add_argument("--fault", action="append", default=[], metavar="UNIT:NAME",
                   help=f"switch a fault on: {', '.join(FAULTS)}")
    p.add_argument("--alarm", action="append", default=[], metavar="UNIT:NAME",
                   help=f"raise a fault bit: {', '.join(ALARMS)}")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ascii_units = set(_ids(args.ascii))
        firmware = tuple(int(x) for x in args.firmware.split("."))
        if len(firmware) != 3:
            raise ValueError("--firmware must be MAJOR.MINOR.PATCH")
        specs = [UnitSpec(u, unicode=u not in ascii_units, kind=args.kind, firmware=firmware)  # type: ignore[arg-type]
                 for u in _ids(args.units)]
        sim = BoardSim(specs, host=args.host, port=args.port)
        for unit, name in _switches(args.fault, FAULTS, "fault"):
            sim.set_faults(unit, **{name: True})
        for unit, name in _switches(args.alarm, ALARMS, "alarm"):
            sim.set_alarms(unit, **{name: True})
        sim.start()
    except (ValueError, KeyError, OSError, argparse.ArgumentTypeError) as exc:
        print(f"hub-modbus-board-sim: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"serving units {','.join(map(str, sim.units))} on {sim.endpoint}; device addresses:", flush=True)
    for unit in sim.units:
        print(f"  {sim.address(unit)}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
