"""The MQTT wire protocol shared by the adapter and the simulator.

Deliberately free of any `hub` import: the simulator (and firmware authors reading this file)
must be able to use it without the hub installed.

Topics, with P the topic prefix and A the device address:
    P/A/cmd     hub -> device   command
    P/A/ack     device -> hub   answer to one command
    P/A/status  device -> hub   periodic and on-change state
    P/A/online  device -> hub   retained "1"; the device's last will (retained) is "0"
"""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timezone
from typing import Any

CMD = "cmd"
ACK = "ack"
STATUS = "status"
ONLINE = "online"
INBOUND_KINDS = (ACK, STATUS, ONLINE)  # what the hub listens to

ONLINE_PAYLOAD = b"1"
OFFLINE_PAYLOAD = b"0"

QOS = 1

PRIORITIES = ("normal", "priority", "emergency")
PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
ACTIVITIES = ("idle", "playing", "relaying", "showing", "off")
CONTENT_FIELDS = ("id", "kind", "title", "body", "language", "media_uri", "sha256", "duration_s")

# Characters MQTT gives a meaning to inside a topic level.
_TOPIC_SPECIALS = ("/", "+", "#", "\x00")


class ProtocolError(ValueError):
    """A payload or topic does not follow the wire protocol; the message says how."""


def topic(prefix: str, address: str, kind: str) -> str:
    return f"{prefix}/{address}/{kind}"


def subscription(prefix: str, kind: str, shared_group: str | None = None) -> str:
    """Topic filter for `kind` from every device under `prefix`, optionally a shared subscription."""
    base = f"{prefix}/+/{kind}"
    return f"$share/{shared_group}/{base}" if shared_group else base


def split_topic(name: str) -> tuple[str, str, str]:
    """(prefix, address, kind) of a device topic. Raises ProtocolError for anything else."""
    parts = name.rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        raise ProtocolError(f"topic {name!r} is not <prefix>/<address>/<kind>")
    return parts[0], parts[1], parts[2]


def address_problem(address: str) -> str | None:
    """Why `address` cannot be used as one MQTT topic level, or None when it can."""
    if not address:
        return "device address is empty"
    bad = [c for c in _TOPIC_SPECIALS if c in address]
    if bad:
        return f"device address {address!r} contains {''.join(bad)!r}, not allowed in an MQTT topic level"
    return None


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot be a topic prefix, or None when it can."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        return "topic prefix must be non-empty and must not start or end with '/'"
    if any(c in prefix for c in ("+", "#", "\x00")) or prefix.startswith("$"):
        return "topic prefix must not contain MQTT wildcards or start with '$'"
    return None


# -- time ------------------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, the form devices are expected to send back."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime; the protocol carries UTC instants only")
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any, what: str = "timestamp") -> datetime:
    """An aware datetime from an ISO-8601 string. Naive times are rejected: a device clock
    without a zone cannot be compared with expiries."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be an ISO-8601 string, got {type(value).__name__}")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"{what} {value!r} is not ISO-8601") from None
    if dt.tzinfo is None:
        raise ProtocolError(f"{what} {value!r} has no UTC offset")
    return dt


# -- payloads --------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo else value.isoformat()
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)  # Decimal, UUID, enums: their text form is what a device can use


def encode(obj: Any) -> bytes:
    # ensure_ascii=False keeps Vietnamese readable on the wire and in broker logs.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")


def decode_object(payload: bytes | bytearray | str) -> dict[str, Any]:
    """A JSON object from a payload, or ProtocolError saying why not."""
    if isinstance(payload, (bytes, bytearray)):
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    else:
        text = payload
    if not text.strip():
        raise ProtocolError("payload is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"payload is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"payload is a JSON {type(obj).__name__}, expected an object")
    return obj


def decode_online(payload: bytes | bytearray) -> bool | None:
    """Presence from an online-topic payload; None for an empty payload (a cleared retained message)."""
    text = bytes(payload).strip()
    if not text:
        return None
    if text in (b"1", b"true", b"online"):
        return True
    if text in (b"0", b"false", b"offline"):
        return False
    raise ProtocolError(f"online payload {text[:40]!r} is neither '1' nor '0'")


def wire_content(content: dict[str, Any] | None) -> dict[str, Any] | None:
    """The content object devices receive: flat, with media fields lifted out of `media`.

    Accepts both the hub's nested content (media.uri, media.sha256, media.duration_s) and an
    already flat dict, so callers need not know which one they hold."""
    if content is None:
        return None
    media: dict[str, Any] = content["media"] if isinstance(content.get("media"), dict) else {}
    out = {
        "id": content.get("id"),
        "kind": content.get("kind"),
        "title": content.get("title"),
        "body": content.get("body"),
        "language": content.get("language"),
        "media_uri": content.get("media_uri", media.get("uri")),
        "sha256": content.get("sha256", media.get("sha256")),
        "duration_s": content.get("duration_s", media.get("duration_s")),
    }
    return out


def command_payload(command_id: str, verb: str, params: dict[str, Any] | None, priority: str,
                    expires_at: datetime | str | None, content: dict[str, Any] | None = None,
                    sent_at: datetime | None = None) -> dict[str, Any]:
    return {
        "id": command_id,
        "verb": verb,
        "params": dict(params or {}),
        "priority": priority,
        "expires_at": iso(expires_at) if isinstance(expires_at, datetime) else expires_at,
        "content": wire_content(content),
        "sent_at": iso(sent_at or utcnow()),
    }


def ack_payload(command_id: str, ok: bool, error: str | None = None,
                state: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": command_id, "ok": ok, "error": error, "state": state or {}}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
