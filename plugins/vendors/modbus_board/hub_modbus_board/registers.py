"""The controller's register map and how values are packed into 16-bit registers.

Shared by the adapter and the simulator, so it imports nothing from `hub` (the simulator runs
on a field laptop without the hub installed). README.md documents the same map as a table.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

# -- holding registers (FC3 read, FC6/FC16 write): setpoints the hub writes -------------------
HR_POWER = 0  # amplifier and board relay, 0 off / 1 on
HR_BRIGHTNESS = 1  # 0-100 %
HR_VOLUME = 2  # 0-VOLUME_MAX device steps
HR_TEXT_LENGTH = 3  # bytes of UTF-8 in the text slot, 0 = blank board
HR_TEXT_FLAGS = 4  # bit0 unicode capable: owned by the device, writes cannot change it
HR_EFFECT = 5  # EFFECTS
HR_DURATION = 6  # seconds the text stays, 0 = until replaced
HR_TEXT = 10  # first of TEXT_REGISTERS registers, two bytes each, big-endian
HR_COMMAND_SEQ = 200  # the hub writes a sequence number last: the device applies HR 0-137
HR_ACK_SEQ = 201  # read-only: the sequence the device last applied
HR_RESULT = 202  # read-only: RESULTS code of that command

SETPOINT_BLOCK = (HR_POWER, 7)  # HR 0-6 as (first, count)
COMMAND_BLOCK = (HR_COMMAND_SEQ, 3)  # HR 200-202

TEXT_MAX_BYTES = 256
TEXT_REGISTERS = TEXT_MAX_BYTES // 2
FLAG_UNICODE = 0x0001

VOLUME_MAX = 31
BRIGHTNESS_MAX = 100
DURATION_MAX = 0xFFFF

EFFECTS = {"static": 0, "scroll": 1, "blink": 2}
EFFECT_NAMES = {code: name for name, code in EFFECTS.items()}

RESULT_OK = 0
RESULT_BAD_UTF8 = 1
RESULT_NOT_ASCII = 2
RESULTS = {
    RESULT_OK: "applied",
    RESULT_BAD_UTF8: "text is not valid UTF-8",
    RESULT_NOT_ASCII: "text has non-ASCII bytes and the board is ASCII-only",
}

# -- input registers (FC4, read-only): what the controller actually does -----------------------
IR_POWER = 0
IR_BRIGHTNESS = 1
IR_VOLUME = 2
IR_HEARTBEAT = 3  # +1 every second while the firmware runs, wraps at 65536
IR_FAULTS = 4  # FAULT_BITS
IR_FIRMWARE = 5  # IR 5, 6, 7: major, minor, patch
IR_TEXT_LENGTH = 8  # bytes on the board now
IR_TEXT = 16  # the board's display buffer, packed like HR_TEXT

STATUS_BLOCK = (IR_POWER, 9)  # IR 0-8, the block the adapter polls
STATUS_BYTES = STATUS_BLOCK[1] * 2

FAULT_BITS = {0: "amplifier_overheat", 1: "speaker_line_open", 2: "mains_lost"}

# Protocol limits of one request (Modbus application protocol 1.1b3, 6.3 and 6.12).
MAX_READ = 125
MAX_WRITE = 123


def pack_text(data: bytes) -> list[int]:
    """Bytes → registers, first byte in the high half; an odd last byte is padded with 0x00."""
    if len(data) % 2:
        data += b"\x00"
    return list(struct.unpack(f">{len(data) // 2}H", data))


def unpack_text(registers: list[int], length: int) -> bytes:
    """Registers → the first `length` bytes they hold."""
    return struct.pack(f">{len(registers)}H", *registers)[:length]


def registers_to_bytes(registers: list[int]) -> bytes:
    """The compact wire form of a register block: each register big-endian, in order."""
    return struct.pack(f">{len(registers)}H", *registers)


def chunks(first: int, count: int, limit: int) -> list[tuple[int, int]]:
    """(address, count) pieces of a range no longer than one request may carry."""
    return [(first + off, min(limit, count - off)) for off in range(0, count, limit)]


@dataclass(frozen=True)
class StatusBlock:
    """IR 0-8 decoded, still on the device's scales."""

    power: bool
    brightness: int
    volume: int  # 0-VOLUME_MAX
    heartbeat: int
    fault_bits: int
    firmware: str
    text_length: int

    @property
    def faults(self) -> list[str]:
        # Bits a newer firmware adds are reported rather than dropped, so nobody misses them.
        return [FAULT_BITS.get(bit, f"fault_bit_{bit}") for bit in range(16) if self.fault_bits >> bit & 1]


def decode_status(payload: bytes) -> StatusBlock:
    """The status block from its wire form; ValueError says what is wrong with it."""
    if len(payload) != STATUS_BYTES:
        raise ValueError(f"expected {STATUS_BYTES} bytes (IR 0-8, big-endian), got {len(payload)}")
    power, brightness, volume, heartbeat, faults, major, minor, patch, text_length = struct.unpack(">9H", payload)
    problems = []
    if power > 1:
        problems.append(f"power {power} is not 0 or 1")
    if brightness > BRIGHTNESS_MAX:
        problems.append(f"brightness {brightness} is outside 0-{BRIGHTNESS_MAX}")
    if volume > VOLUME_MAX:
        problems.append(f"volume {volume} is outside 0-{VOLUME_MAX}")
    if text_length > TEXT_MAX_BYTES:
        problems.append(f"text length {text_length} is outside 0-{TEXT_MAX_BYTES}")
    if problems:
        raise ValueError("; ".join(problems))
    return StatusBlock(power=bool(power), brightness=brightness, volume=volume, heartbeat=heartbeat,
                       fault_bits=faults, firmware=f"{major}.{minor}.{patch}", text_length=text_length)
