"""The polled status block → the hub's DeviceStatus dict."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import DeviceStatusSchema
from hub.units import from_vendor_scale
from hub.vendor import StatusParseError

from hub_modbus_board.registers import VOLUME_MAX, StatusBlock, decode_status


def decode(address: str, payload: bytes) -> StatusBlock:
    """The raw block, or StatusParseError naming the address and what is wrong."""
    try:
        return decode_status(payload)
    except ValueError as exc:
        raise StatusParseError(f"status from {address}: {exc}") from None


def to_status(address: str, block: StatusBlock, at: datetime | None = None) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict; the device answered, so it is online."""
    activity = "off" if not block.power else ("showing" if block.text_length else "idle")
    data = {
        "online": True,
        "activity": activity,
        "volume": from_vendor_scale(block.volume, 0, VOLUME_MAX),
        "brightness": block.brightness,
        "power": block.power,
        "faults": block.faults,
        "firmware": block.firmware,
        # The block carries no clock: the time is when the hub read it.
        "reported_at": (at or datetime.now(timezone.utc)).isoformat(),
    }
    try:
        return DeviceStatusSchema().load(data)
    except ValidationError as err:
        raise StatusParseError(f"status from {address}: {err.messages}") from None


def parse_status(address: str, payload: bytes) -> dict[str, Any]:
    return to_status(address, decode(address, payload))
