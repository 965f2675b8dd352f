"""The frame of the serial LED protocol: STX, length, address, command, payload, CRC-16, ETX,
with byte stuffing. Imports nothing from `hub`, so the simulator can run without the hub.

    STX | LEN_HI LEN_LO | ADDR | CMD | PAYLOAD… | CRC_LO CRC_HI | ETX
    0x02   big-endian                             CRC-16/MODBUS   0x03

LEN counts ADDR + CMD + PAYLOAD. The CRC covers LEN, ADDR, CMD and PAYLOAD before stuffing.
Between STX and ETX every 0x02, 0x03 or 0x1B is sent as 0x1B followed by the byte XOR 0x20,
so a raw STX always starts a frame and a raw ETX always ends one: a receiver that lost sync
finds the next frame by waiting for STX.
"""
from __future__ import annotations

from dataclasses import dataclass

STX = 0x02
ETX = 0x03
ESC = 0x1B
ESC_XOR = 0x20
_SPECIAL = frozenset({STX, ETX, ESC})
MAX_BODY = 0xFFFF  # what the 2-byte length can say: address + command + payload
MAX_PAYLOAD = MAX_BODY - 2
# LEN(2) + ADDR + CMD + CRC(2): the smallest unstuffed content between STX and ETX.
_MIN_CONTENT = 6


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_modbus(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/MODBUS (reflected polynomial 0xA001, initial 0xFFFF); "123456789" gives 0x4B37."""
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


class FrameError(ValueError):
    """Bytes that are not a well-formed frame. `kind` is checksum, length, escape or short."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Frame:
    address: int
    command: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0xFF or not 0 <= self.command <= 0xFF:
            raise ValueError(f"address {self.address} and command {self.command} must each fit in one byte")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(self.payload)} bytes exceeds the frame limit of {MAX_PAYLOAD}")


def stuff(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        if b in _SPECIAL:
            out += bytes((ESC, b ^ ESC_XOR))
        else:
            out.append(b)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b != ESC:
            out.append(b)
            continue
        nxt = next(it, None)
        if nxt is None:
            raise FrameError("escape", "escape byte 0x1B at the end of the frame")
        value = nxt ^ ESC_XOR
        if value not in _SPECIAL:
            raise FrameError("escape", f"escape sequence 0x1B 0x{nxt:02X} stands for no special byte")
        out.append(value)
    return bytes(out)


def _body(frame: Frame) -> bytes:
    return (2 + len(frame.payload)).to_bytes(2, "big") + bytes((frame.address, frame.command)) + frame.payload


def frame_crc(frame: Frame) -> int:
    """The checksum `frame` carries on the wire."""
    return crc16_modbus(_body(frame))


def encode_frame(frame: Frame, *, crc: int | None = None) -> bytes:
    """The bytes on the wire. `crc` overrides the checksum (simulators fake line noise with it)."""
    body = _body(frame)
    check = crc16_modbus(body) if crc is None else crc
    return bytes((STX,)) + stuff(body + check.to_bytes(2, "little")) + bytes((ETX,))


def decode_content(stuffed: bytes) -> Frame:
    """A frame from what lay between STX and ETX; FrameError when it is not one."""
    content = unstuff(stuffed)
    if len(content) < _MIN_CONTENT:
        raise FrameError("short", f"frame of {len(content)} bytes is shorter than the minimum of {_MIN_CONTENT}")
    body, received = content[:-2], int.from_bytes(content[-2:], "little")
    declared = int.from_bytes(body[:2], "big")
    if declared != len(body) - 2:
        raise FrameError("length", f"length field {declared} != {len(body) - 2} bytes received")
    computed = crc16_modbus(body)
    if received != computed:
        raise FrameError("checksum", f"checksum 0x{received:04X} != 0x{computed:04X}")
    return Frame(body[2], body[3], bytes(body[4:]))


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame, STX to ETX inclusive."""
    if len(data) < 2 or data[0] != STX or data[-1] != ETX:
        raise FrameError("short", "a frame starts with STX 0x02 and ends with ETX 0x03")
    inner = data[1:-1]
    if STX in inner or ETX in inner:
        raise FrameError("escape", "unescaped STX or ETX inside the frame")
    return decode_content(inner)


class FrameReader:
    """Cuts a byte stream into frames. Bytes outside STX…ETX are counted as `stray` and dropped;
    a raw STX inside a frame abandons the partial frame, since STX is never sent unescaped."""

    def __init__(self, max_content: int = 2 * (MAX_BODY + 4)) -> None:
        self._buf: bytearray | None = None
        self._max = max_content
        self.stray = 0
        self.received = 0

    @property
    def in_frame(self) -> bool:
        return self._buf is not None

    @property
    def pending(self) -> int:
        """Bytes of a frame begun but not yet ended."""
        return 0 if self._buf is None else len(self._buf) + 1

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        """Frames (and FrameErrors for damaged ones) completed by `data`, in order."""
        out: list[Frame | FrameError] = []
        self.received += len(data)
        for b in data:
            if b == STX:
                if self._buf is not None:
                    self.stray += len(self._buf) + 1
                self._buf = bytearray()
            elif self._buf is None:
                self.stray += 1
            elif b == ETX:
                content, self._buf = bytes(self._buf), None
                try:
                    out.append(decode_content(content))
                except FrameError as exc:
                    out.append(exc)
            else:
                self._buf.append(b)
                if len(self._buf) > self._max:  # no ETX in sight: a runaway, not a frame
                    self.stray += len(self._buf) + 1
                    self._buf = None
        return out
