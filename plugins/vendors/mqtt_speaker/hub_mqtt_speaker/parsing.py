"""Device payloads -> the hub's normalised forms (DeviceStatus dicts, Acks)."""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import Ack, StatusParseError

from hub_mqtt_speaker import protocol

_STATUS_KEYS = ("online", "activity", "source", "volume", "brightness", "power", "faults", "firmware")
_SIGNAL_KEYS = ("network", "rssi_dbm", "quality")
# Field names in schema errors, mapped back to what the device actually sent.
_WIRE_NAMES = {"reported_at": "ts"}
# Built once: constructing a marshmallow schema per message cost 4× the parse itself (bench/).
_STATUS_SCHEMA = DeviceStatusSchema()


def _describe(messages: Any, path: str = "") -> list[str]:
    if isinstance(messages, dict):
        out: list[str] = []
        for key, sub in messages.items():
            name = _WIRE_NAMES.get(str(key), str(key))
            out.extend(_describe(sub, f"{path}.{name}" if path else name))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path}: {' '.join(messages)}" if path else " ".join(messages)]
    if isinstance(messages, list):
        return [line for m in messages for line in _describe(m, path)]
    return [f"{path}: {messages}" if path else str(messages)]


def parse_status(address: str, payload: bytes) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict from a status payload, or StatusParseError."""
    try:
        raw = protocol.decode_object(payload)
    except protocol.ProtocolError as exc:
        raise StatusParseError(f"status from {address}: {exc}") from None
    if "ts" not in raw or raw["ts"] in (None, ""):
        raise StatusParseError(f"status from {address}: missing ts")
    # Extra keys are ignored rather than refused so firmware can add fields without breaking
    # older hubs; the schema itself would reject them.
    data: dict[str, Any] = {k: raw[k] for k in _STATUS_KEYS if k in raw}
    data["reported_at"] = raw["ts"]
    # A device that is sending status is online; firmware that omits the flag is not wrong.
    data.setdefault("online", True)
    signal = raw.get("signal")
    if isinstance(signal, dict):
        signal = {k: signal[k] for k in _SIGNAL_KEYS if k in signal}
        if isinstance(signal.get("network"), str):
            signal["network"] = signal["network"].lower()
    if "signal" in raw:
        data["signal"] = signal
    if data.get("faults") is None and "faults" in data:
        data["faults"] = []
    try:
        return _STATUS_SCHEMA.load(data)
    except ValidationError as err:
        raise StatusParseError(f"status from {address}: {'; '.join(_describe(err.messages))}") from None


def parse_ack(address: str, payload: bytes) -> Ack:
    """An Ack from an ack payload, or StatusParseError."""
    try:
        raw = protocol.decode_object(payload)
    except protocol.ProtocolError as exc:
        raise StatusParseError(f"ack from {address}: {exc}") from None
    command_id = raw.get("id")
    if not isinstance(command_id, str) or not command_id:
        raise StatusParseError(f"ack from {address}: id must be a non-empty string")
    ok = raw.get("ok")
    if not isinstance(ok, bool):
        raise StatusParseError(f"ack from {address}: ok must be true or false")
    error = raw.get("error")
    if error is not None and not isinstance(error, str):
        raise StatusParseError(f"ack from {address}: error must be a string or null")
    state = raw.get("state")
    if state is not None and not isinstance(state, dict):
        raise StatusParseError(f"ack from {address}: state must be an object")
    if state and "volume" in state:
        volume = state["volume"]
        if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume <= 100:
            raise StatusParseError(f"ack from {address}: state.volume must be an integer 0-100")
    reason = error or (None if ok else "device refused the command without a reason")
    return Ack(command_id=command_id, ok=ok, reason=reason, detail=dict(state) if state else None)
