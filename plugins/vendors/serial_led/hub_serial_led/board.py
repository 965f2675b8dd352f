"""Simulated board firmware: what one board does with a frame addressed to it, fault switches
included. Imports nothing from `hub`."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from hub_serial_led import protocol as p
from hub_serial_led.address import MAX_BOARD, MIN_BOARD
from hub_serial_led.frame import Frame, crc16_modbus, encode_frame, frame_crc

FAULT_SWITCHES = ("corrupt_next_n", "silent", "wrong_address", "nak_all", "mangle_text", "ack_without_acting",
                  "no_status")
_EFFECT_NAMES = {code: name for name, code in p.EFFECTS.items()}
_NOT_DECOMPOSED = str.maketrans({"đ": "d", "Đ": "D"})


def strip_diacritics(text: str) -> str:
    """What a board without Vietnamese fonts makes of a text (the mangle_text fault)."""
    decomposed = unicodedata.normalize("NFD", text.translate(_NOT_DECOMPOSED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass
class SimBoard:
    """One board: its settings, its live state, and its fault switches (settable at run time
    through SerialBoardsSim.set_faults)."""

    address: int
    unicode: bool = True  # False: the board has ASCII fonts only and refuses other bytes
    max_text_bytes: int = 4096
    firmware: str = "sim-1.0"
    status_faults: set[str] = field(default_factory=set)  # reported in status: led_module, overheat…
    # live state
    text: str = ""
    text_bytes: bytes = b""
    effect: str | None = None
    brightness: int = 100
    power: bool = True
    # fault switches
    corrupt_next_n: int = 0  # the next N replies carry a wrong checksum
    silent: bool = False  # acts on frames but never answers
    wrong_address: int | bool | None = None  # answers as this board (True: the next address up)
    nak_all: bool = False  # refuses every command with a hardware fault (still answers status)
    mangle_text: bool = False  # stores text without diacritics (and says so in its text checksum)
    ack_without_acting: bool = False  # answers as if it had acted, changes nothing
    no_status: bool = False  # answers commands but never a status query: no heartbeat on a polled bus
    link_cut: bool = False  # off the bus (cable cut, unpowered): hears nothing, does nothing
    # what happened
    received: list[tuple[int, bytes]] = field(default_factory=list)  # (command, payload) addressed to it
    replies: int = 0

    def __post_init__(self) -> None:
        if not MIN_BOARD <= self.address <= MAX_BOARD:
            raise ValueError(f"board address {self.address} is outside {MIN_BOARD}–{MAX_BOARD}")

    @property
    def showing(self) -> bool:
        return bool(self.text)

    # What an observer in front of the board would see (the certification suite's witness keys).
    @property
    def activity(self) -> str:
        return "off" if not self.power else "showing" if self.showing else "idle"

    @property
    def led_text(self) -> str:
        return self.text

    def status(self) -> p.BoardStatus:
        return p.BoardStatus(power=self.power, showing=self.showing, brightness=self.brightness,
                             faults=tuple(sorted(self.status_faults)), firmware=self.firmware)

    def set_faults(self, **switches: int | bool | None) -> None:
        unknown = sorted(set(switches) - set(FAULT_SWITCHES))
        if unknown:
            raise ValueError(f"unknown fault switch(es) {', '.join(unknown)}; known: {', '.join(FAULT_SWITCHES)}")
        for name, value in switches.items():
            setattr(self, name, value)

    # -- the firmware ----------------------------------------------------------------------
    def respond(self, frame: Frame) -> bytes | None:
        """The bytes this board puts on the line for `frame` (None: it stays quiet)."""
        if self.link_cut:
            return None
        self.received.append((frame.command, frame.payload))
        reply = self._act(frame)
        if self.silent or (self.no_status and frame.command == p.QUERY_STATUS):
            return None
        self.replies += 1
        address = self.address
        if self.wrong_address is True:
            address = self.address % MAX_BOARD + 1
        elif self.wrong_address:
            address = int(self.wrong_address)
        reply = Frame(address, reply.command, reply.payload)
        if self.corrupt_next_n > 0:
            self.corrupt_next_n -= 1
            return encode_frame(reply, crc=frame_crc(reply) ^ 0x5A5A)  # any checksum but the right one
        return encode_frame(reply)

    def _act(self, frame: Frame) -> Frame:
        cmd, data = frame.command, frame.payload

        def nak(code: int) -> Frame:
            return Frame(self.address, p.NAK, p.nak_payload(cmd, code))

        def ok(extra: bytes = b"") -> Frame:
            return Frame(self.address, p.REPLY | cmd, bytes((p.RESULT_OK,)) + extra)

        if self.nak_all and cmd != p.QUERY_STATUS:  # a board that refuses commands still reports
            return nak(0x07)
        if cmd not in p.COMMAND_NAMES:
            return nak(0x01)
        if not self.power and cmd not in (p.POWER, p.QUERY_STATUS):
            return nak(0x06)
        acting = not self.ack_without_acting
        if cmd == p.QUERY_STATUS:
            return Frame(self.address, p.REPLY | cmd, p.status_payload(self.status())) if not data else nak(0x02)
        if cmd == p.SHOW_TEXT:
            if not data:
                return nak(0x02)
            if data[0] not in _EFFECT_NAMES:
                return nak(0x04)
            raw = data[1:]
            if len(raw) > self.max_text_bytes:
                return nak(0x03)
            try:
                text = raw.decode("utf-8" if self.unicode else "ascii")
            except UnicodeDecodeError:
                return nak(0x05)
            stored = unicodedata.normalize("NFC", text)
            if self.mangle_text:
                stored = strip_diacritics(stored)
            if not acting:  # it claims to show exactly what it was sent
                return ok(crc16_modbus(raw).to_bytes(2, "big"))
            self.text, self.text_bytes, self.effect = stored, stored.encode("utf-8"), _EFFECT_NAMES[data[0]]
            return Frame(self.address, p.REPLY | cmd, p.text_reply_payload(self.text_bytes))
        if cmd == p.CLEAR:
            if data:
                return nak(0x02)
            if acting:
                self.text, self.text_bytes, self.effect = "", b"", None
            return ok()
        if cmd == p.BRIGHTNESS:
            if len(data) != 1:
                return nak(0x02)
            if data[0] > 100:
                return nak(0x04)
            if acting:
                self.brightness = data[0]
            return ok(bytes((data[0],)))
        # POWER
        if len(data) != 1:
            return nak(0x02)
        if data[0] not in (0, 1):
            return nak(0x04)
        if acting:
            self.power = bool(data[0])
        return ok(bytes((data[0],)))
