"""Gateway bodies -> the hub's normalised forms (DeviceStatus dicts, Acks)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import NETWORKS, DeviceStatusSchema
from hub.units import from_vendor_scale
from hub.vendor import Ack, StatusParseError

from hub_http_gateway import protocol
from hub_http_gateway.protocol import VOLUME_MAX, VOLUME_MIN, AudioOut, is_int, is_number

ACTIVITY = {AudioOut.IDLE: "idle", AudioOut.PLAYING: "playing", AudioOut.RELAYING: "relaying"}


def _online(raw: dict[str, Any]) -> bool:
    value = raw.get("online")
    # PHP back ends commonly serialise booleans as 0/1; both mean the same to the gateway.
    if isinstance(value, bool):
        return value
    if is_int(value) and value in (0, 1):
        return bool(value)
    raise ValueError(f"online must be true/false (or 1/0), got {value!r}")


def _activity(raw: dict[str, Any]) -> str:
    value = raw.get("audio_out_state")
    if not is_int(value) or value not in ACTIVITY:
        raise ValueError(f"audio_out_state must be 0 (idle), 1 (playing) or 2 (relaying), got {value!r}")
    return ACTIVITY[AudioOut(value)]


def volume_from_gateway(value: Any) -> int | None:
    """The gateway's 1–10 volume as the hub's 0–100 (None when the gateway does not know it)."""
    if value is None:
        return None
    if not is_int(value) or not VOLUME_MIN <= value <= VOLUME_MAX:
        raise ValueError(f"volume {value!r} is outside the gateway's {VOLUME_MIN}-{VOLUME_MAX} scale")
    return from_vendor_scale(value, VOLUME_MIN, VOLUME_MAX)


def _reported_at(raw: dict[str, Any]) -> datetime:
    ts = raw.get("ts")
    if not is_number(ts) or ts <= 0:
        raise ValueError(f"ts must be a positive number of Unix seconds, got {ts!r}")
    try:
        return datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"ts {ts!r} is not a representable time") from None


def _signal(raw: dict[str, Any]) -> dict[str, Any] | None:
    rssi, network = raw.get("rssi"), raw.get("network")
    if rssi is None and network is None:
        return None
    out: dict[str, Any] = {}
    if rssi is not None:
        if not is_int(rssi) or not -150 <= rssi <= 0:
            raise ValueError(f"rssi must be an integer dBm between -150 and 0, got {rssi!r}")
        out["rssi_dbm"] = rssi
    if network is not None:
        if not isinstance(network, str) or network.lower() not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {network!r}")
        out["network"] = network.lower()
    return out


def _optional_str(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null, got {value!r}")
    return value or None


def status_from_object(address: str, raw: Any) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict from one device object of the status endpoint."""
    if not isinstance(raw, dict):
        raise StatusParseError(f"status from {address}: expected an object, got {type(raw).__name__}")
    device = raw.get("device", address)
    if device != address:
        raise StatusParseError(f"status from {address}: the object is for device {device!r}")
    try:
        data: dict[str, Any] = {
            "online": _online(raw),
            "activity": _activity(raw),
            "volume": volume_from_gateway(raw.get("volume")),
            "signal": _signal(raw),
            "source": _optional_str(raw, "source"),
            "firmware": _optional_str(raw, "version"),
            "reported_at": _reported_at(raw).isoformat(),
        }
    except ValueError as exc:
        raise StatusParseError(f"status from {address}: {exc}") from None
    try:
        return DeviceStatusSchema().load(data)
    except ValidationError as err:  # the checks above should have caught it; say what slipped through
        raise StatusParseError(f"status from {address}: {err.messages}") from None


def parse_status(address: str, payload: bytes) -> dict[str, Any]:
    try:
        raw = protocol.decode_object(payload, "payload")
    except protocol.ProtocolError as exc:
        raise StatusParseError(f"status from {address}: {exc}") from None
    return status_from_object(address, raw)


def ack_from_result(address: str, raw: Any, command_id: str | None = None) -> Ack:
    """An Ack from one per-device result object; `command_id` fills in when the object lacks it."""
    if not isinstance(raw, dict):
        raise StatusParseError(f"result for {address}: expected an object, got {type(raw).__name__}")
    cid = raw.get("command_id", command_id)
    if not isinstance(cid, str) or not cid:
        raise StatusParseError(f"result for {address}: command_id must be a non-empty string")
    code = raw.get("code")
    if not is_int(code):
        raise StatusParseError(f"result for {address}: code must be an integer, got {code!r}")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise StatusParseError(f"result for {address}: message must be a string or null")
    if code != protocol.Code.OK:
        why = message or protocol.MESSAGES.get(code, "refused")
        return Ack(command_id=cid, ok=False, reason=f"{why} (gateway code {code})")
    return Ack(command_id=cid, ok=True, detail=_state_detail(address, raw.get("state")))


def _state_detail(address: str, state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    if not isinstance(state, dict):
        raise StatusParseError(f"result for {address}: state must be an object")
    detail: dict[str, Any] = {}
    try:
        if "volume" in state:
            detail["volume"] = volume_from_gateway(state["volume"])
        if "audio_out_state" in state:
            detail["activity"] = _activity(state)
    except ValueError as exc:
        raise StatusParseError(f"result for {address}: state.{exc}") from None
    return detail or None


def parse_ack(address: str, payload: bytes) -> Ack:
    try:
        raw = protocol.decode_object(payload, "payload")
    except protocol.ProtocolError as exc:
        raise StatusParseError(f"result for {address}: {exc}") from None
    return ack_from_result(address, raw)
