"""One simulated controller unit: its registers and what its firmware does when they are written.

Pure Python (no pymodbus, no hub), so the behaviour can be read and tested on its own; the
simulator puts it behind a Modbus TCP server.
"""
from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from hub_modbus_board.registers import (EFFECT_NAMES, FAULT_BITS, FLAG_UNICODE, HR_ACK_SEQ, HR_BRIGHTNESS,
                                        HR_COMMAND_SEQ, HR_DURATION, HR_EFFECT, HR_POWER, HR_RESULT, HR_TEXT,
                                        HR_TEXT_FLAGS, HR_TEXT_LENGTH, HR_VOLUME, IR_TEXT, RESULT_BAD_UTF8,
                                        RESULT_NOT_ASCII, RESULT_OK, TEXT_MAX_BYTES, TEXT_REGISTERS, VOLUME_MAX,
                                        pack_text, unpack_text)

# Modbus exception codes the firmware answers with.
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3
DEVICE_FAILURE = 4

HR_VALID = frozenset(range(0, 7)) | frozenset(range(HR_TEXT, HR_TEXT + TEXT_REGISTERS)) | {200, 201, 202}
HR_READ_ONLY = frozenset({HR_ACK_SEQ, HR_RESULT})
IR_VALID = frozenset(range(0, 9)) | frozenset(range(IR_TEXT, IR_TEXT + TEXT_REGISTERS))
HR_LIMITS = {HR_POWER: 1, HR_BRIGHTNESS: 100, HR_VOLUME: VOLUME_MAX, HR_TEXT_LENGTH: TEXT_MAX_BYTES,
             HR_EFFECT: max(EFFECT_NAMES)}

FAULTS = ("unresponsive", "silent", "exception_on_write", "wrong_volume", "mangle_text", "ack_without_acting",
          "no_heartbeat")
ALARMS = tuple(FAULT_BITS.values())
WRONG_VOLUME_OFFSET = 5


@dataclass(frozen=True)
class UnitSpec:
    unit: int
    unicode: bool = True  # HR 4 bit0: whether the board can show Vietnamese diacritics
    kind: str = "led_board"
    firmware: tuple[int, int, int] = (1, 4, 2)


@dataclass(frozen=True)
class UnitState:
    """What a unit does right now (not its setpoints), for tests and the console."""

    unit: int
    power: bool
    brightness: int
    volume: int  # device steps 0-31
    text: str  # the display buffer decoded as UTF-8
    text_bytes: bytes
    effect: str
    duration_s: int
    unicode: bool
    heartbeat: int
    alarms: tuple[str, ...]
    ack_seq: int
    commits: int  # commands acknowledged (HR 200 writes), acted on or not
    faults: frozenset[str]


def strip_diacritics(text: str) -> str:
    """What a badly configured board does to Vietnamese: the letters without their marks."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class BoardUnit:
    """Thread-safe: the server's loop writes, tests read and flip fault switches."""

    def __init__(self, spec: UnitSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._hr = [0] * (max(HR_VALID) + 1)
        self._hr[HR_POWER], self._hr[HR_BRIGHTNESS], self._hr[HR_VOLUME] = 1, 80, 16
        self._hr[HR_TEXT_FLAGS] = FLAG_UNICODE if spec.unicode else 0
        self._hr[HR_EFFECT] = 1
        self._power, self._brightness, self._volume = True, 80, 16
        self._shown, self._effect, self._duration, self._shown_at = b"", 1, 0, 0.0
        self._alarm_bits = 0
        self._faults: set[str] = set()
        self._started = clock()
        self._frozen_heartbeat: int | None = None
        self._commits = 0
        self.link_cut = False  # the cable is out: nothing reaches the unit, nothing comes back

    # -- fault switches -------------------------------------------------------------------------

    def set_faults(self, **flags: bool) -> None:
        unknown = sorted(set(flags) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault switches {unknown}; known: {', '.join(FAULTS)}")
        with self._lock:
            for name, on in flags.items():
                if name == "no_heartbeat" and on and "no_heartbeat" not in self._faults:
                    self._frozen_heartbeat = self._heartbeat()
                elif name == "no_heartbeat" and not on:
                    self._frozen_heartbeat = None
                (self._faults.add if on else self._faults.discard)(name)

    def set_alarms(self, **flags: bool) -> None:
        """Raise or clear fault bits (IR 4): amplifier_overheat, speaker_line_open, mains_lost."""
        bits = {name: bit for bit, name in FAULT_BITS.items()}
        unknown = sorted(set(flags) - set(bits))
        if unknown:
            raise ValueError(f"unknown alarms {unknown}; known: {', '.join(bits)}")
        with self._lock:
            for name, on in flags.items():
                self._alarm_bits = self._alarm_bits | (1 << bits[name]) if on else self._alarm_bits & ~(1 << bits[name])

    @property
    def unresponsive(self) -> bool:
        """Neither acts on requests nor answers them (hung, or unplugged behind a switch)."""
        return self.link_cut or "unresponsive" in self._faults

    @property
    def silent(self) -> bool:
        """Answers nothing, whether or not it acted (`silent` acts, `unresponsive` does not)."""
        return self.link_cut or bool(self._faults & {"unresponsive", "silent"})

    # -- registers ------------------------------------------------------------------------------

    def read_holding(self, first: int, count: int) -> list[int] | int:
        """Values, or a Modbus exception code."""
        if any(a not in HR_VALID for a in range(first, first + count)):
            return ILLEGAL_ADDRESS
        with self._lock:
            return self._hr[first:first + count]

    def read_input(self, first: int, count: int) -> list[int] | int:
        if any(a not in IR_VALID for a in range(first, first + count)):
            return ILLEGAL_ADDRESS
        with self._lock:
            ir = self._input_registers()
        return [ir.get(a, 0) for a in range(first, first + count)]

    def write_holding(self, first: int, values: list[int]) -> int | None:
        """None when written, else the Modbus exception code the firmware answers with."""
        addresses = range(first, first + len(values))
        if any(a not in HR_VALID or a in HR_READ_ONLY for a in addresses):
            return ILLEGAL_ADDRESS
        if any(a in HR_LIMITS and v > HR_LIMITS[a] for a, v in zip(addresses, values)):
            return ILLEGAL_VALUE
        with self._lock:
            if "exception_on_write" in self._faults:
                return DEVICE_FAILURE
            for a, v in zip(addresses, values):
                if a == HR_TEXT_FLAGS:  # bit0 describes the hardware; writing cannot change it
                    v = (v & ~FLAG_UNICODE) | (self._hr[HR_TEXT_FLAGS] & FLAG_UNICODE)
                self._hr[a] = v
            if HR_COMMAND_SEQ in addresses:
                self._commit(self._hr[HR_COMMAND_SEQ])
        return None

    # -- firmware -------------------------------------------------------------------------------

    def _commit(self, seq: int) -> None:
        result = RESULT_OK if "ack_without_acting" in self._faults else self._apply()
        self._hr[HR_ACK_SEQ], self._hr[HR_RESULT] = seq, result
        self._commits += 1

    def _apply(self) -> int:
        hr = self._hr
        length = hr[HR_TEXT_LENGTH]
        data = unpack_text(hr[HR_TEXT:HR_TEXT + math.ceil(length / 2)], length)
        if self.spec.unicode:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return RESULT_BAD_UTF8
        elif any(b > 0x7F for b in data):
            return RESULT_NOT_ASCII
        else:
            text = data.decode("ascii")
        if "mangle_text" in self._faults:
            data = strip_diacritics(text).encode("utf-8")
        self._power = bool(hr[HR_POWER])
        self._brightness = hr[HR_BRIGHTNESS]
        volume = hr[HR_VOLUME]
        self._volume = (volume + WRONG_VOLUME_OFFSET) % (VOLUME_MAX + 1) if "wrong_volume" in self._faults else volume
        if data != self._shown or hr[HR_EFFECT] != self._effect or hr[HR_DURATION] != self._duration:
            self._shown_at = self._clock()
        self._shown, self._effect, self._duration = data, hr[HR_EFFECT], hr[HR_DURATION]
        return RESULT_OK

    def _heartbeat(self) -> int:
        if self._frozen_heartbeat is not None:
            return self._frozen_heartbeat
        return int(self._clock() - self._started) & 0xFFFF

    def _expire_text(self) -> None:
        if self._shown and self._duration and self._clock() - self._shown_at >= self._duration:
            self._shown = b""

    def _input_registers(self) -> dict[int, int]:
        self._expire_text()
        major, minor, patch = self.spec.firmware
        ir = {0: int(self._power), 1: self._brightness, 2: self._volume, 3: self._heartbeat(), 4: self._alarm_bits,
              5: major, 6: minor, 7: patch, 8: len(self._shown)}
        ir.update({IR_TEXT + i: v for i, v in enumerate(pack_text(self._shown))})
        return ir

    def state(self) -> UnitState:
        with self._lock:
            self._expire_text()
            return UnitState(
                unit=self.spec.unit, power=self._power, brightness=self._brightness, volume=self._volume,
                text=self._shown.decode("utf-8", errors="replace"), text_bytes=self._shown,
                effect=EFFECT_NAMES.get(self._effect, str(self._effect)), duration_s=self._duration,
                unicode=self.spec.unicode, heartbeat=self._heartbeat(),
                alarms=tuple(name for bit, name in FAULT_BITS.items() if self._alarm_bits >> bit & 1),
                ack_seq=self._hr[HR_ACK_SEQ], commits=self._commits, faults=frozenset(self._faults))
