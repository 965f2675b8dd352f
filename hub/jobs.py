"""rq jobs. One job carries one adapter batch of one command."""
from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import lazyload

from hub import health
from hub.db import utcnow
from hub.deliveries import finish, mark_sent
from hub.models import Command, Delivery, Device
from hub.runtime import Runtime, get_runtime
from hub.vendor import DeviceRef, Envelope, Outcome, Outgoing, Result, TransientError

log = logging.getLogger(__name__)


def envelope_for(cmd: Command) -> Envelope:
    content: dict[str, Any] | None = None
    if cmd.content is not None:
        c = cmd.content
        media = c.media or {}
        content = {"id": c.id, "kind": c.kind, "title": c.title, "body": c.body, "language": c.language,
                   "media_uri": media.get("uri"), "sha256": media.get("sha256"),
                   "duration_s": media.get("duration_s")}
    return Envelope(command_id=cmd.id, verb=cmd.verb, params=dict(cmd.params or {}), priority=cmd.priority,
                    expires_at=cmd.expires_at, content=content)


def device_ref(d: Device) -> DeviceRef:
    return DeviceRef(id=d.id, address=d.address, kind=d.kind, model=d.model,
                     capabilities=frozenset(d.capabilities or ()), config=dict(d.config or {}))


def send_batch(command_id: str, vendor: str, delivery_ids: list[int], rt: Runtime | None = None) -> dict[str, int]:
    """Send the batch's rows that are still queued; retry transient failures with backoff.

    Rows end `sent` (ack pending), `acked`, `failed` or `expired` here; none stays queued.
    Returns how many rows ended in each state in this job.
    """
    rt = rt or get_runtime()
    backoff = rt.settings.retry_backoff_s
    tally = {"sent": 0, "acked": 0, "failed": 0, "expired": 0}
    attempt = 0
    while True:
        attempt += 1
        with rt.db.session() as s:
            cmd = s.get(Command, command_id)
            if cmd is None:
                log.warning("command %s vanished; nothing to send", command_id)
                return tally
            # device_ref reads columns only: don't load each device's area, tags and status
            rows = s.execute(select(Delivery, Device).join(Device, Device.id == Delivery.device_id)
                             .options(lazyload(Device.area), lazyload(Device.tags), lazyload(Device.status))
                             .where(Delivery.id.in_(delivery_ids), Delivery.state == "queued")).all()
            if not rows:
                return tally
            now = utcnow()
            if cmd.expires_at <= now:
                tally["expired"] += finish(s, [(d.id, "expired", "expired before it could be sent", None)
                                              for d, _ in rows], now)
                return tally
            s.execute(update(Delivery).where(Delivery.id.in_([d.id for d, _ in rows]))
                      .values(attempts=Delivery.attempts + 1))
            env = envelope_for(cmd)
            batch = [Outgoing(device_ref(dev), env) for _, dev in rows]
            by_device = {dev.id: d.id for d, dev in rows}
        results = _send(rt, vendor, batch)
        retry: list[Result] = []
        with rt.db.session() as s:
            now = utcnow()
            sent_ids, ended, gave_up = [], [], []
            for r in results:
                did = by_device.get(r.device_id)
                if did is None:
                    log.error("adapter %s answered for device %s it was not sent", vendor, r.device_id)
                    continue
                if r.outcome is Outcome.PENDING:
                    sent_ids.append(did)
                elif r.outcome is Outcome.ACKED:
                    ended.append((did, "acked", None, r.detail))
                elif r.transient and attempt <= len(backoff):
                    retry.append(r)
                else:
                    why = r.reason or "failed"
                    if r.transient:  # the link, not the device, failed: it counts towards offline
                        why = f"gave up after {attempt} attempts: {why}"
                        gave_up.append(r.device_id)
                    ended.append((did, "failed", why, r.detail))
            answered = {r.device_id for r in results}
            for dev_id, did in by_device.items():  # an adapter that forgot a device must not lose it
                if dev_id not in answered:
                    ended.append((did, "failed", f"adapter {vendor} returned no result for this device", None))
            mark_sent(s, sent_ids, now)
            tally["sent"] += len(sent_ids)
            finish(s, ended, now)
            health.count_failures(s, gave_up)
            for _, state, _, _ in ended:
                tally[state] += 1
        if not retry:
            return tally
        delay = backoff[attempt - 1]
        log.info("command %s via %s: %d devices to retry in %.1fs (%s)", command_id, vendor, len(retry), delay,
                 retry[0].reason)
        time.sleep(delay)
        delivery_ids = [by_device[r.device_id] for r in retry]


def _send(rt: Runtime, vendor: str, batch: list[Outgoing]) -> list[Result]:
    """Hand the batch to the adapter; a batch-wide failure becomes a transient result per device."""
    try:
        adapter = rt.adapter(vendor)
        results = adapter.send(batch)
        return list(results)
    except TransientError as exc:
        rt.drop_adapter(vendor)
        reason = str(exc)
    except Exception as exc:  # a plugin bug must end rows visibly, and be retried like a link fault
        log.exception("adapter %s raised while sending", vendor)
        rt.drop_adapter(vendor)
        reason = f"adapter error: {type(exc).__name__}: {exc}"
    return [Result(o.device.id, Outcome.FAILED, reason=reason, transient=True) for o in batch]
