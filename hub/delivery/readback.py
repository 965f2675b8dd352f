"""Confirmation by read-back: for devices that give no acknowledgement (a plugin's
`traits.confirmation == "readback"`), the ingest confirms a sent delivery when the device's status
shows the command's effect. No worker waits for it: the adapter's send() returns PENDING, and the
status the ingest already polls (or is pushed) does the confirming.

A delivery is acked with the status values that showed the effect as its result (what `hub
deliveries` and the API show). A command whose effect no status shows (sync_schedule) cannot be
confirmed this way: it stays sent and ends expired, which is the truth — nobody saw it done.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.delivery.states import finish_by_device
from hub.store.models import Command, Content, Delivery, DeliveryState

Status = dict[str, Any]


def _is_source(seen: Any, content: Content | None) -> bool:
    if seen is None or content is None:
        return False
    seen = str(seen)
    uri = (content.media or {}).get("uri")
    return seen in (content.id, uri) or content.id in seen


def _level(key: str, level: Any, half_step: float) -> Callable[[Status], bool]:
    return lambda st: isinstance(st.get(key), (int, float)) and abs(st[key] - float(level)) <= half_step


def expectation(verb: str, params: dict[str, Any], content: Content | None,
                level_step: float | None) -> Callable[[Status], bool] | None:
    """What the device's status must show once `verb` is carried out; None when no status shows it."""
    half = max(0.5, (level_step or 1.0) / 2)
    if verb == "play":
        return lambda st: st.get("activity") == "playing" and _is_source(st.get("source"), content)
    if verb == "stop":
        return lambda st: st.get("activity") not in ("playing", "relaying", None)
    if verb == "set_volume" and "level" in params:
        return _level("volume", params["level"], half)
    if verb == "set_brightness" and "level" in params:
        return _level("brightness", params["level"], half)
    if verb == "power" and "on" in params:
        return lambda st: st.get("power") is bool(params["on"])
    if verb == "relay_start":
        return lambda st: st.get("activity") == "relaying"
    if verb == "relay_stop":
        return lambda st: st.get("activity") not in ("relaying", None)
    if verb == "led_show":
        return lambda st: st.get("activity") == "showing"
    if verb == "led_clear":
        return lambda st: st.get("activity") not in ("showing", None)
    return None


_SHOWN = ("activity", "source", "volume", "brightness", "power")


def confirm(session: Session, reports: Iterable[tuple[str, Status]], level_steps: dict[str, float | None]) -> int:
    """Ack the sent deliveries of the devices in `reports` ((device id, status) of read-back
    vendors, in arrival order) whose effect the status shows. `level_steps`: vendor -> its step."""
    latest: dict[str, Status] = {}
    for did, st in reports:
        latest.setdefault(did, {}).update({k: v for k, v in st.items() if v is not None or k == "source"})
    if not latest:
        return 0
    rows = session.execute(select(Delivery.command_id, Delivery.device_id, Delivery.vendor, Command)
                           .join(Command, Command.id == Delivery.command_id)
                           .where(Delivery.device_id.in_(list(latest)), Delivery.state == DeliveryState.SENT)).all()
    acks = []
    for command_id, did, vendor, cmd in rows:
        want = expectation(cmd.verb, dict(cmd.params or {}), cmd.content, level_steps.get(vendor))
        st = latest[did]
        if want is not None and want(st):
            acks.append((command_id, did, DeliveryState.ACKED, None,
                         {**{k: st[k] for k in _SHOWN if k in st}, "confirmed_by": "status read-back"}))
    return finish_by_device(session, acks) if acks else 0
