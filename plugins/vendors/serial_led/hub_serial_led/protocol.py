"""Commands, replies and payloads of the serial LED protocol (inside the frames of frame.py).
Imports nothing from `hub`: the simulated boards speak through this module too."""
from __future__ import annotations

from dataclasses import dataclass

from hub_serial_led.frame import crc16_modbus

SHOW_TEXT = 0x10
CLEAR = 0x11
BRIGHTNESS = 0x12
POWER = 0x13
QUERY_STATUS = 0x20
REPLY = 0x80  # a positive reply's command is REPLY | the command it answers
NAK = 0x7F

COMMAND_NAMES = {SHOW_TEXT: "show text", CLEAR: "clear", BRIGHTNESS: "set brightness", POWER: "switch power",
                 QUERY_STATUS: "status query"}

EFFECTS = {"static": 0x00, "scroll": 0x01, "blink": 0x02}

RESULT_OK = 0x00
# Result codes, in a NAK (the board refused) or as the first payload byte of a reply.
ERRORS = {
    0x01: "unknown command",
    0x02: "bad payload length",
    0x03: "text too long",
    0x04: "value out of range",
    0x05: "characters the board cannot show",
    0x06: "power is off",
    0x07: "hardware fault",
}

# Status fault bits -> the names that go into DeviceStatus.faults.
FAULT_BITS = {0: "led_module", 1: "power_supply", 2: "overheat", 3: "door_open"}
FLAG_POWER = 0x01
FLAG_SHOWING = 0x02
MAX_FIRMWARE = 32
STATUS_FIXED = 5  # result, flags, brightness, faults, firmware length


class ProtocolError(ValueError):
    """A payload that does not fit its command."""


def command_name(command: int) -> str:
    return COMMAND_NAMES.get(command & ~REPLY, f"command 0x{command:02X}")


def describe_error(code: int) -> str:
    return f"error 0x{code:02X} ({ERRORS.get(code, 'unknown error')})"


# -- requests (hub -> board) ---------------------------------------------------------------
def show_text_payload(effect: str, text: str) -> bytes:
    if effect not in EFFECTS:
        raise ProtocolError(f"effect {effect!r} is not one of {', '.join(EFFECTS)}")
    return bytes((EFFECTS[effect],)) + text.encode("utf-8")


def level_payload(level: int) -> bytes:
    if not 0 <= level <= 100:
        raise ProtocolError(f"brightness {level} is outside 0–100")
    return bytes((level,))


def power_payload(on: bool) -> bytes:
    return b"\x01" if on else b"\x00"


# -- replies (board -> hub) ----------------------------------------------------------------
def nak_payload(command: int, code: int) -> bytes:
    return bytes((command & 0xFF, code & 0xFF))


def decode_nak(payload: bytes) -> tuple[int | None, int | None]:
    """(refused command, error code); None where a short NAK left them out."""
    command = payload[0] if len(payload) >= 1 else None
    code = payload[1] if len(payload) >= 2 else None
    return command, code


def text_reply_payload(stored: bytes) -> bytes:
    """OK plus the CRC-16 of the text bytes the board now shows, so the hub can tell whether
    the board stored what it was sent."""
    return bytes((RESULT_OK,)) + crc16_modbus(stored).to_bytes(2, "big")


@dataclass(frozen=True)
class BoardStatus:
    power: bool
    showing: bool
    brightness: int
    faults: tuple[str, ...] = ()
    firmware: str = ""


def status_payload(st: BoardStatus) -> bytes:
    flags = (FLAG_POWER if st.power else 0) | (FLAG_SHOWING if st.showing else 0)
    bits = 0
    for bit, name in FAULT_BITS.items():
        if name in st.faults:
            bits |= 1 << bit
    fw = st.firmware.encode("ascii")[:MAX_FIRMWARE]
    return bytes((RESULT_OK, flags, st.brightness, bits, len(fw))) + fw


def decode_status_payload(payload: bytes) -> BoardStatus:
    """The payload of a status reply (result code first). Trailing bytes are ignored so that
    newer firmware may append fields; unknown flag bits are ignored for the same reason."""
    if len(payload) < STATUS_FIXED:
        raise ProtocolError(f"status payload of {len(payload)} bytes is shorter than {STATUS_FIXED}")
    result, flags, brightness, bits, fw_len = payload[:STATUS_FIXED]
    if result != RESULT_OK:
        raise ProtocolError(f"board answered the status query with {describe_error(result)}")
    if brightness > 100:
        raise ProtocolError(f"brightness {brightness} is outside 0–100")
    if fw_len > MAX_FIRMWARE:
        raise ProtocolError(f"firmware length {fw_len} exceeds {MAX_FIRMWARE}")
    raw_fw = payload[STATUS_FIXED:STATUS_FIXED + fw_len]
    if len(raw_fw) < fw_len:
        raise ProtocolError(f"firmware field truncated: {len(raw_fw)} of {fw_len} bytes")
    if not all(0x20 <= b < 0x7F for b in raw_fw):
        raise ProtocolError("firmware version is not printable ASCII")
    faults = tuple(FAULT_BITS.get(bit, f"fault_bit{bit}") for bit in range(8) if bits & (1 << bit))
    return BoardStatus(power=bool(flags & FLAG_POWER), showing=bool(flags & FLAG_SHOWING), brightness=brightness,
                       faults=faults, firmware=raw_fw.decode("ascii"))
