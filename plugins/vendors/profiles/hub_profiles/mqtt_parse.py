"""What an MQTT device sends back, read through the profile: status, replies, presence, echoes."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import ValidationError

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import Ack, StatusParseError

from hub_profiles.model import AckSpec, MqttStatus, Presence
from hub_profiles.template import RenderError, to_text
from hub_profiles.values import MISSING, FieldSpec, Source, decode_message, get_path, loosely_same, read_fields


def _decode(what: str, address: str, payload: bytes) -> Any:
    try:
        return decode_message(payload)
    except ValueError as exc:
        raise StatusParseError(f"{what} from {address}: {exc}") from None


def _path_getter(message: Any):  # noqa: ANN202 - a closure handed to read_fields
    def get(source: Source) -> Any:
        return get_path(message, source.path or "$")
    return get


def detail_from(fields: dict[str, FieldSpec], message: Any) -> dict[str, Any]:
    """Ack detail (read-back values) from a device message; a field that cannot be read is left
    out rather than failing an ack the device did give."""
    values, _problems = read_fields(fields, _path_getter(message))
    return values


def status_from(address: str, fields: dict[str, FieldSpec], get: Any) -> dict[str, Any]:
    """A DeviceStatusSchema-valid dict, or StatusParseError naming the field."""
    data, problems = read_fields(fields, get)
    if problems:
        raise StatusParseError(f"status from {address}: {'; '.join(problems)}")
    data.setdefault("online", True)  # a device that reports is online
    data.setdefault("reported_at", datetime.now(timezone.utc).isoformat())
    if isinstance(data.get("reported_at"), datetime):
        data["reported_at"] = data["reported_at"].isoformat()
    if isinstance(data.get("signal"), dict) and isinstance(data["signal"].get("network"), str):
        data["signal"]["network"] = data["signal"]["network"].lower()
    try:
        return DeviceStatusSchema().load(data)
    except ValidationError as err:
        raise StatusParseError(f"status from {address}: {_flatten(err.messages)}") from None


def _flatten(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v, f"{path}.{k}" if path else str(k)) for k, v in messages.items())
    if isinstance(messages, list):
        return f"{path}: {' '.join(map(str, messages))}"
    return f"{path}: {messages}"


def parse_status(status: MqttStatus | None, address: str, payload: bytes) -> dict[str, Any]:
    if status is None or status.topic is None:
        raise StatusParseError(f"status from {address}: the profile reads no status")
    if not payload.strip():
        raise StatusParseError(f"status from {address}: empty message")
    message = _decode("status", address, payload)
    read = [f.source.path for f in status.fields.values() if f.source.path is not None]
    if read and all(get_path(message, path) is MISSING for path in read):
        # Otherwise constants and defaults alone would make a status of a message that said nothing
        # (a truncated JSON document is read as text and has none of the paths).
        raise StatusParseError(f"status from {address}: the message has none of the fields the profile reads "
                               f"({', '.join(sorted(set(read)))})")
    return status_from(address, status.fields, _path_getter(message))


def parse_reply(spec: AckSpec | None, address: str, payload: bytes) -> Ack:
    if spec is None or spec.mode != "reply":
        raise StatusParseError(f"ack from {address}: the profile's devices send no replies")
    message = _decode("ack", address, payload)
    command_id = get_path(message, spec.id_path or "id")
    if isinstance(command_id, (int, float)) and not isinstance(command_id, bool):
        command_id = to_text(command_id)
    if not isinstance(command_id, str) or not command_id:
        raise StatusParseError(f"ack from {address}: {spec.id_path} must hold the command id")
    ok_value = get_path(message, spec.ok_path or "ok")
    if ok_value is MISSING:
        raise StatusParseError(f"ack from {address}: {spec.ok_path} is missing")
    ok = any(loosely_same(ok_value, v) for v in spec.ok_values)
    reason = None
    if spec.error_path:
        err = get_path(message, spec.error_path)
        if err not in (MISSING, None, ""):
            reason = to_text(err)
    if not ok and reason is None:
        reason = f"device answered {spec.ok_path}={to_text(ok_value)}"
    detail = detail_from(spec.fields, message) if spec.fields else None
    return Ack(command_id=command_id, ok=ok, reason=None if ok else reason, detail=detail or None)


def parse_presence(presence: Presence, address: str, payload: bytes) -> bool | None:
    """True/False, or None for an empty payload (a retained presence being cleared)."""
    if not payload:
        return None
    value = get_path(_decode("presence", address, payload), presence.path)
    if loosely_same(value, presence.online):
        return True
    if loosely_same(value, presence.offline):
        return False
    raise StatusParseError(f"presence from {address}: {to_text(value)!r} is neither "
                           f"{to_text(presence.online)!r} nor {to_text(presence.offline)!r}")


def echo_matches(expected: list[tuple[str, Any]], message: Any) -> bool:
    return all(loosely_same(get_path(message, path), want) for path, want in expected)


__all__ = ["RenderError", "detail_from", "echo_matches", "parse_presence", "parse_reply", "parse_status",
           "status_from"]
