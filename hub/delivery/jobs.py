"""rq jobs. One job carries one adapter batch of one command."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from hub.delivery import arbitration
from hub.fleet import health
from hub.delivery.claims import claim, job_token
from hub.media import MediaError
from hub.store.batching import chunks
from hub.store.db import utcnow
from hub.delivery.states import finish, job_tally, mark_sent
from hub.store.models import Command, Delivery, DeliveryState, Device
from hub.runtime import Runtime, get_runtime
from hub.vendor import DeviceRef, Envelope, Outcome, Outgoing, Result, TransientError

log = logging.getLogger(__name__)


def envelope_for(cmd: Command, rt: Runtime | None = None) -> Envelope:
    """What the adapter sends. Media in the hub's store (media.key) goes out as a signed URL made
    now, valid until the command expires plus media_url_ttl_s (a device may still be fetching the
    rest of what it began just before); raises MediaError when the store cannot sign it."""
    content: dict[str, Any] | None = None
    if cmd.content is not None:
        c = cmd.content
        media = c.media or {}
        uri = media.get("uri")
        if media.get("key"):
            rt = rt or get_runtime()
            until = _aware(cmd.expires_at) + timedelta(seconds=rt.settings.media_url_ttl_s)
            uri = rt.media_store().signed_url(media["key"], until - utcnow()).url
        content = {"id": c.id, "kind": c.kind, "title": c.title, "body": c.body, "language": c.language,
                   "media_uri": uri, "sha256": media.get("sha256"),
                   "duration_s": media.get("duration_s")}
    return Envelope(command_id=cmd.id, verb=cmd.verb, params=dict(cmd.params or {}), priority=cmd.priority,
                    expires_at=cmd.expires_at, content=content)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


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
    tally = job_tally()
    attempt = 0
    while True:
        attempt += 1
        delivery_ids = attempt_once(rt, command_id, vendor, delivery_ids, attempt, tally)
        if not delivery_ids:
            return tally
        delay = backoff[attempt - 1]
        log.info("command %s via %s: %d devices to retry in %.1fs", command_id, vendor, len(delivery_ids), delay)
        time.sleep(delay)


def attempt_once(rt: Runtime, command_id: str, vendor: str, delivery_ids: list[int], attempt: int,
                 tally: dict[str, int]) -> list[int]:
    """One attempt (number `attempt`) at the rows still queued; returns those worth retrying.
    The rows are claimed (hub.delivery.claims) and the claim committed before anything is sent."""
    with rt.db.session() as s:
        cmd = s.get(Command, command_id)
        if cmd is None:
            log.warning("command %s vanished; nothing to send", command_id)
            return []
        rows = claim(s, delivery_ids, job_token())
        if not rows:
            return []
        now = utcnow()
        if cmd.expires_at <= now:
            gone = [(d.id, DeliveryState.EXPIRED, "expired before it could be sent", None) for d, _ in rows]
            tally[DeliveryState.EXPIRED] += finish(s, gone, now)
            return []
        rows = arbitration.admit(s, rt.plugins, vendor, cmd, rows)  # devices without priority handling
        if not rows:
            return []
        try:
            env = envelope_for(cmd, rt)
        except MediaError as exc:  # a device sent no audio would play nothing: say why, once, for each
            log.error("command %s: its media cannot be sent: %s", command_id, exc)
            gone = [(d.id, DeliveryState.FAILED, f"media: {exc}", None) for d, _ in rows]
            tally[DeliveryState.FAILED] += finish(s, gone, now)
            return []
        count_attempt(s, [d.id for d, _ in rows])
        batch = [Outgoing(device_ref(dev), env) for _, dev in rows]
        by_device = {dev.id: d.id for d, dev in rows}
    handed_at = utcnow()  # sent_at: when the rows were handed to the transport
    results = _send(rt, vendor, batch)
    with rt.db.session() as s:
        retry = record_results(s, vendor, results, by_device, attempt, len(rt.settings.retry_backoff_s), handed_at,
                               tally)
    return [by_device[r.device_id] for r in retry]


def count_attempt(s: Any, ids: list[int]) -> None:
    for chunk in chunks(ids):
        s.execute(update(Delivery).where(Delivery.id.in_(chunk)).values(attempts=Delivery.attempts + 1)
                  .execution_options(synchronize_session=False))


def record_results(s: Any, vendor: str, results: list[Result], by_device: dict[str, int], attempt: int,
                   retries: int, handed_at: Any, tally: dict[str, int]) -> list[Result]:
    """Write one send's results: pending rows `sent` (at `handed_at`), acked and failed rows ended,
    link failures counted towards offline. Returns the transient failures still worth retrying."""
    now = utcnow()
    retry: list[Result] = []
    sent_ids, ended, gave_up = [], [], []
    for r in results:
        did = by_device.get(r.device_id)
        if did is None:
            log.error("adapter %s answered for device %s it was not sent", vendor, r.device_id)
            continue
        if r.outcome is Outcome.PENDING:
            sent_ids.append(did)
        elif r.outcome is Outcome.ACKED:
            ended.append((did, DeliveryState.ACKED, None, r.detail))
        elif r.transient and attempt <= retries:
            retry.append(r)
        else:
            why = r.reason or DeliveryState.FAILED.value
            if r.transient:  # the link, not the device, failed: it counts towards offline
                why = f"gave up after {attempt} attempts: {why}"
                gave_up.append(r.device_id)
            ended.append((did, DeliveryState.FAILED, why, r.detail))
    answered = {r.device_id for r in results}
    for dev_id, did in by_device.items():  # an adapter that forgot a device must not lose it
        if dev_id not in answered:
            ended.append((did, DeliveryState.FAILED, f"adapter {vendor} returned no result for this device", None))
    # rows acked on the spot were handed to the transport too: they get their sent_at first
    mark_sent(s, sent_ids + [did for did, state, _, _ in ended if state == DeliveryState.ACKED], handed_at)
    tally[DeliveryState.SENT] += len(sent_ids)
    finish(s, ended, now)
    health.count_failures(s, gave_up)
    for _, state, _, _ in ended:
        tally[state] += 1
    return retry


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
