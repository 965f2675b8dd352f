"""The gateway's HTTP wire protocol, shared by the adapter and the simulator.

Deliberately free of any `hub` import: the simulator (and the vendor's engineers reading this
file) must be able to use it without the hub installed. README.md documents it in prose.

    POST /api/v1/batch            one packet for up to N devices -> one result per device
    GET  /api/v1/devices/status   every device's state
    GET  /api/v1/ping             liveness and the API key's validity

Every request carries `Authorization: Bearer <api key>`.
"""
from __future__ import annotations

import enum
import json
import math
from typing import Any

BATCH_PATH = "/api/v1/batch"
STATUS_PATH = "/api/v1/devices/status"
PING_PATH = "/api/v1/ping"

VOLUME_MIN, VOLUME_MAX = 1, 10
PRIORITIES = ("normal", "priority", "emergency")  # lowest first; the hub's classes (hub.capabilities)
MAX_DEVICE_ID_LEN = 64
# What the gateway itself accepts per request; the adapter's batch_limit must not exceed it.
GATEWAY_MAX_DEVICES = 1000
MAX_BODY_BYTES = 1 << 20
RELAY_SCHEMES = ("http", "https", "rtsp", "rtmp", "icecast", "srt")
FILE_SCHEMES = ("http", "https")


class PacketType(enum.IntEnum):
    PUSH_FILE_URLS = 1  # pre-load files on the device, play nothing
    SCHEDULE = 2  # replace the device's local schedule
    PLAY_NOW = 5
    STOP = 6
    VOLUME = 7
    RELAY_START = 11
    RELAY_STOP = 12


class Code(enum.IntEnum):
    """Per-device result codes. Anything but OK is final: the gateway has already retried the
    device on its own link, so the hub retrying the same device would not help."""

    OK = 0
    DEVICE_OFFLINE = 1
    UNKNOWN_DEVICE = 2
    EXPIRED = 3
    REJECTED = 4


MESSAGES = {
    Code.OK: "ok",
    Code.DEVICE_OFFLINE: "device offline",
    Code.UNKNOWN_DEVICE: "unknown device",
    Code.EXPIRED: "expired",
    Code.REJECTED: "device rejected the command",
}


class AudioOut(enum.IntEnum):
    IDLE = 0
    PLAYING = 1
    RELAYING = 2


class ProtocolError(ValueError):
    """A body does not follow the wire protocol; the message says how."""


# -- encoding ------------------------------------------------------------------------------------

def encode(obj: Any) -> bytes:
    # ensure_ascii=False keeps Vietnamese titles readable on the wire and in gateway logs.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_object(payload: bytes | bytearray | str, what: str = "body") -> dict[str, Any]:
    """A JSON object from a body, or ProtocolError saying why not."""
    if isinstance(payload, (bytes, bytearray)):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        text = payload
    if not text.strip():
        raise ProtocolError(f"{what} is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{what} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} is a JSON {_json_type(obj)}, expected an object")
    return obj


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def device_id_problem(device: Any) -> str | None:
    """Why `device` cannot be a gateway device id, or None when it can."""
    if not isinstance(device, str) or not device:
        return "device id must be a non-empty string"
    if len(device) > MAX_DEVICE_ID_LEN:
        return f"device id {device[:20]!r}… is longer than {MAX_DEVICE_ID_LEN} characters"
    if not device.isprintable() or device != device.strip():
        return f"device id {device!r} contains control characters or surrounding spaces"
    return None


def _url_problem(value: Any, schemes: tuple[str, ...], what: str) -> str | None:
    if not isinstance(value, str) or "://" not in value:
        return f"{what} must be a URL"
    if value.split("://", 1)[0].lower() not in schemes or any(c.isspace() for c in value):
        return f"{what} must be a {'/'.join(schemes)} URL without spaces"
    return None


# -- requests -------------------------------------------------------------------------------------

def batch_request(request_id: str, command_id: str, packet_type: int, devices: list[str],
                  data: dict[str, Any], priority: str = "normal", expires_at: int | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "command_id": command_id, "packet_type": int(packet_type),
            "priority": priority, "expires_at": expires_at, "devices": list(devices), "data": dict(data)}


def data_problem(packet_type: PacketType, data: dict[str, Any]) -> str | None:
    """Why `data` does not fit `packet_type`, or None when it does."""
    if packet_type in (PacketType.STOP, PacketType.RELAY_STOP):
        return None
    if packet_type is PacketType.VOLUME:
        v = data.get("volume")
        if not is_int(v) or not VOLUME_MIN <= v <= VOLUME_MAX:
            return f"data.volume must be an integer {VOLUME_MIN}-{VOLUME_MAX}"
        return None
    if packet_type is PacketType.RELAY_START:
        return _url_problem(data.get("url"), RELAY_SCHEMES, "data.url")
    if packet_type is PacketType.PLAY_NOW:
        problem = _url_problem(data.get("url"), FILE_SCHEMES, "data.url")
        if problem:
            return problem
        repeat, volume, duration = data.get("repeat", 1), data.get("volume"), data.get("duration_s")
        if not is_int(repeat) or not 1 <= repeat <= 20:
            return "data.repeat must be an integer 1-20"
        if volume is not None and (not is_int(volume) or not VOLUME_MIN <= volume <= VOLUME_MAX):
            return f"data.volume must be an integer {VOLUME_MIN}-{VOLUME_MAX} or null"
        if duration is not None and (not is_number(duration) or duration < 0):
            return "data.duration_s must be a non-negative number or null"
        return None
    if packet_type is PacketType.PUSH_FILE_URLS:
        urls = data.get("urls")
        if not isinstance(urls, list) or not urls:
            return "data.urls must be a non-empty list"
        return next((p for p in (_url_problem(u, FILE_SCHEMES, "data.urls[]") for u in urls) if p), None)
    if packet_type is PacketType.SCHEDULE:
        slots = data.get("slots")
        if not isinstance(slots, list):
            return "data.slots must be a list"
        for slot in slots:
            if not isinstance(slot, dict) or not is_number(slot.get("start")):
                return "data.slots[] must be objects with a numeric start"
            problem = _url_problem(slot.get("url"), FILE_SCHEMES, "data.slots[].url")
            if problem:
                return problem
        return None
    return f"packet_type {int(packet_type)} is not supported"


def parse_batch_request(body: bytes) -> dict[str, Any]:
    """The gateway's view of a batch request, validated, or ProtocolError."""
    req = decode_object(body, "request body")
    for key in ("request_id", "command_id"):
        if not isinstance(req.get(key), str) or not req[key]:
            raise ProtocolError(f"{key} must be a non-empty string")
    try:
        packet_type = PacketType(req.get("packet_type"))
    except ValueError:
        raise ProtocolError(f"packet_type {req.get('packet_type')!r} is not one of "
                            f"{', '.join(str(int(p)) for p in PacketType)}") from None
    if req.get("priority", "normal") not in PRIORITIES:
        raise ProtocolError(f"priority must be one of {', '.join(PRIORITIES)}")
    expires_at = req.get("expires_at")
    if expires_at is not None and not is_number(expires_at):
        raise ProtocolError("expires_at must be Unix seconds or null")
    devices = req.get("devices")
    if not isinstance(devices, list) or not devices:
        raise ProtocolError("devices must be a non-empty list")
    problem = next((p for p in map(device_id_problem, devices) if p), None)
    if problem:
        raise ProtocolError(problem)
    data = req.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError("data must be an object")
    problem = data_problem(packet_type, data)
    if problem:
        raise ProtocolError(problem)
    return {**req, "packet_type": packet_type, "data": data, "priority": req.get("priority", "normal")}


# -- answers --------------------------------------------------------------------------------------

def result(device: str, command_id: str, code: Code, message: str | None = None,
           state: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device, "command_id": command_id, "code": int(code),
                           "message": message or MESSAGES.get(code, "error")}
    if state is not None:
        out["state"] = state
    return out


def error_body(message: str) -> dict[str, Any]:
    return {"error": message}


def device_status(device: str, online: bool, audio_out_state: int, volume: int | None, ts: float,
                  rssi: int | None = None, network: str | None = None, version: str | None = None,
                  source: str | None = None) -> dict[str, Any]:
    return {"device": device, "online": online, "audio_out_state": audio_out_state, "volume": volume,
            "rssi": rssi, "network": network, "version": version, "source": source, "ts": ts}
