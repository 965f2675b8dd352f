"""A board's status reply -> the hub's DeviceStatus dict."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import StatusParseError

from hub_serial_led import protocol as p
from hub_serial_led.address import parse_address
from hub_serial_led.frame import STX, FrameError, decode_frame


def parse_status(address: str, payload: bytes) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict from a whole status reply frame (first byte STX) or its
    payload (first byte the result code, 0x00). Malformed input raises StatusParseError and
    nothing else: this runs on bytes off a noisy line."""
    try:
        return _parse(address, payload)
    except StatusParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract allows no other exception
        raise StatusParseError(f"status from {address}: unreadable ({type(exc).__name__}: {exc})") from None


def _board_of(address: str) -> int | None:
    try:
        return parse_address(address).board
    except (ValueError, AttributeError, TypeError):
        return None  # an address we cannot read does not make the payload unreadable


def _parse(address: str, payload: bytes) -> dict[str, Any]:
    def bad(why: str) -> StatusParseError:
        return StatusParseError(f"status from {address}: {why}")

    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise bad(f"expected bytes, got {type(payload).__name__}")
    data = bytes(payload)
    if not data:
        raise bad("empty payload")
    if data[0] == STX:
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            raise bad(f"corrupt frame: {exc}") from None
        expected = _board_of(address)
        if expected is not None and frame.address != expected:
            raise bad(f"frame from board {frame.address}, expected {expected}")
        if frame.command == p.NAK:
            _cmd, code = p.decode_nak(frame.payload)
            raise bad(f"board refused the status query: {p.describe_error(code) if code is not None else 'NAK'}")
        if frame.command != p.REPLY | p.QUERY_STATUS:
            raise bad(f"not a status reply (command 0x{frame.command:02X})")
        data = frame.payload
    try:
        st = p.decode_status_payload(data)
    except p.ProtocolError as exc:
        raise bad(str(exc)) from None
    activity = "off" if not st.power else "showing" if st.showing else "idle"
    raw = {"online": True, "activity": activity, "power": st.power, "brightness": st.brightness,
           "faults": list(st.faults), "firmware": st.firmware or None,
           # Boards keep no clock: the moment the reply was read is when the state held.
           "reported_at": datetime.now(timezone.utc)}
    try:
        return DeviceStatusSchema().load(raw)
    except ValidationError as err:
        raise bad(f"invalid status: {err.messages}") from None
