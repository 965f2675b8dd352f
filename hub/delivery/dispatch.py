"""A command's way in: validate references, check the actor's areas, select devices, write one
delivery row per device, supersede what it replaces, and enqueue one job per adapter batch — or,
for a command with a start_at in the future, leave its rows `scheduled` for hub.delivery.release.

Supersede rules (a newer command replaces older ones not yet sent, on the devices they share):
* an immediate command supersedes `queued` rows of commands of the same slot (VERB_SLOT) and no
  higher class that are immediate or already due — never a scheduled command that has not
  started, even one already released to a worker; between plays (play, relay_start) the
  arbiter's rule decides (hub.arbiter_rule): a newer play supersedes a waiting one only where
  it would replace it on the device — the same rank, never an emergency (two emergencies
  queue) — while a waiting lower-ranked play stands and plays after it;
* a scheduled command supersedes only `scheduled` rows of commands of the same slot, no higher
  class and the *same* start_at (a corrected bulletin for 07:00 replaces the first one);
  scheduled commands at different times are separate programme items and all stand;
* cancelling (`cancel`) a scheduled command ends its rows not yet sent `superseded`,
  "cancelled by <user>".
Supersede never touches a row a job has claimed (it may be on the device already), nor a
command of an issuer whose areas are wider than the newer command's issuer's (hub.delivery.claims).
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import arbiter_rule
from hub.delivery import job_paths
from hub.access import audit
from hub.access.actors import Actor, Forbidden
from hub.capabilities import DEFAULT_PRIORITY, PRIORITIES, PRIORITY_RANK, VERB_SLOT, required_capabilities
from hub.delivery.claims import covers, issuer_scope
from hub.delivery.led_fit import fit_checker
from hub.store.batching import IN_LIST_MAX, chunks
from hub.store.content_tables import ContentStatus
from hub.store.db import utcnow
from hub.store.models import DELIVERY_STATES, Area, Command, Content, Delivery, DeliveryState, Device, User
from hub.access.permissions import COMMAND_SENDERS, describe, may_send_commands
from hub.runtime import Runtime
from hub.fleet.targeting import TargetError, resolve

log = logging.getLogger(__name__)


START_GRACE_S = 1.0  # a start_at less than this far in the past means "now" (clocks and forms lag)


class DispatchError(ValueError):
    """A command cannot be accepted. `status` is the HTTP status the API answers with."""

    def __init__(self, field: str | None, message: str, status: int = 422, rule: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message, self.status = field, message, status
        self.rule = rule  # a named rule of the hub (e.g. "unpublished"), for API clients


@dataclass
class Submitted:
    command: Command
    created: bool
    counts: dict[str, int]


def request_hash(data: dict[str, Any]) -> str:
    def default(o: Any) -> str:
        if isinstance(o, datetime):
            return o.isoformat()
        raise TypeError(type(o))

    return hashlib.sha256(json.dumps(data, sort_keys=True, default=default).encode()).hexdigest()


def counts(session: Session, command_id: str) -> dict[str, int]:
    out = dict.fromkeys(DELIVERY_STATES, 0)
    rows = session.execute(select(Delivery.state, func.count()).where(Delivery.command_id == command_id)
                           .group_by(Delivery.state))
    out.update({state: n for state, n in rows})
    return out


def issued_by(session: Session, actor: Actor) -> Any:
    """SQL condition: the command was issued by this actor — by this *account*, for an account.
    A row from before schema 3 names only its issuer: it is the account's if the account already
    existed when the command was made (a name taken again later is another account)."""
    legacy = and_(Command.issuer_id.is_(None), Command.issuer == actor.name)
    if actor.user_id is None:
        return legacy
    since = session.scalar(select(User.created_at).where(User.id == actor.user_id))
    if since is None:  # the account is gone
        return Command.issuer_id == actor.user_id
    return or_(Command.issuer_id == actor.user_id, and_(legacy, Command.created_at >= since))


def _existing(session: Session, actor: Actor, key: str | None) -> Command | None:
    if not key:
        return None
    mine = issued_by(session, actor)
    return session.scalars(select(Command).where(mine, or_(Command.account_idempotency_key == key,
                                                           and_(Command.issuer_id.is_(None),
                                                                Command.idempotency_key == key)))).first()


def _replay(session: Session, cmd: Command, digest: str) -> Submitted:
    if cmd.request_hash != digest:
        raise DispatchError("idempotency_key", "already used for a different command", status=409)
    return Submitted(cmd, False, counts(session, cmd.id))


def _content(session: Session, data: dict[str, Any], now: datetime) -> Content | None:
    cid = data.get("content_id")
    if not cid:
        return None
    content = session.get(Content, cid)
    if content is None:
        raise DispatchError("content_id", f"unknown content {cid}")
    # Here, where every door (API, CLI, a plugin, a scheduled command) passes: devices get only
    # what an approver let out. A row from before the workflow (no status) counts as published.
    # The workflow module is a layer above; the rule is the same as its check_sendable.
    if content.status is not None and content.status != ContentStatus.PUBLISHED:
        raise DispatchError("content_id", f"content {cid} is {content.status}; only a published content may be "
                                          "sent to devices (submit it for approval, or have it published)",
                            status=409, rule="unpublished")
    if content.valid_until and content.valid_until <= now:
        raise DispatchError("content_id", f"content {cid} expired at {content.valid_until.isoformat()}")
    return content


def _times(rt: Runtime, data: dict[str, Any], now: datetime) -> tuple[datetime | None, datetime, bool]:
    """(start_at, expires_at, scheduled) checked against the clock; raises DispatchError naming
    the field. `scheduled` is false for an absent start_at or one within the grace of now."""
    start_at: datetime | None = data.get("start_at")
    if start_at is not None:
        if start_at < now - timedelta(seconds=START_GRACE_S):
            raise DispatchError("start_at", f"lies in the past ({start_at.isoformat()}; now is "
                                            f"{now.isoformat(timespec='seconds')}); omit it to send at once")
        horizon = rt.settings.schedule_horizon_days
        if start_at > now + timedelta(days=horizon):
            raise DispatchError("start_at", f"is more than {horizon} days ahead ({start_at.isoformat()})")
    scheduled = start_at is not None and start_at > now
    begins = start_at if scheduled else now
    expires_at = data.get("expires_at") or begins + timedelta(seconds=rt.settings.default_ttl_s)
    if expires_at <= now:
        raise DispatchError("expires_at", "lies in the past")
    if start_at is not None and expires_at <= start_at:
        raise DispatchError("expires_at", f"must be after start_at ({start_at.isoformat()})")
    longest = timedelta(seconds=rt.settings.max_command_ttl_s)
    if expires_at - begins > longest:
        raise DispatchError("expires_at", f"lies more than {longest} after the command starts "
                                          f"({begins.isoformat(timespec='seconds')}); see max_command_ttl_s")
    return start_at, expires_at, scheduled


def _initial_state(device: Device, need: frozenset[str], installed: set[str],
                   because: str = "") -> tuple[str, str | None]:
    if device.admin_state != "enabled":
        return DeliveryState.FAILED, "device disabled by administrator"
    if device.vendor not in installed:
        return DeliveryState.FAILED, f"vendor plugin {device.vendor} is not installed on this hub"
    lacking = sorted(need - set(device.capabilities or ()))
    if lacking:
        return DeliveryState.UNSUPPORTED, f"device lacks {', '.join(lacking)}{because}"
    return DeliveryState.QUEUED, None


def _needs(verb: str, content: Content | None) -> tuple[frozenset[str], str]:
    """What a device must have for this command, and why in words when it is not obvious. A
    `tts_text` without synthesised audio would reach a device as raw text: a speaker that cannot
    speak text stays silent while its answer says `acked`, so only a device that speaks text
    itself may have it."""
    media = (content.media or {}) if content is not None else {}
    has_audio = bool(media.get("key") or media.get("uri"))
    need = required_capabilities(verb, content.kind if content else None, has_audio)
    if content is not None and verb == "play" and content.kind == "tts_text" and not has_audio:
        return need, (f" (content {content.id} is text with no synthesised audio yet, and the device does not "
                      "speak text itself)")
    return need, ""


def _require_sender(actor: Actor, what: str) -> None:
    """403 unless `actor` holds a role that sends commands, through a token that may write."""
    if not may_send_commands(actor.roles):
        mine = ", ".join(sorted(actor.roles)) or "no role"
        raise DispatchError(None, f"{actor.name} ({mine}) may not {what} commands: needs {describe(COMMAND_SENDERS)}",
                            status=403)
    if actor.read_only:
        raise DispatchError(None, f"this API token of {actor.name} is read-only", status=403)


def submit(rt: Runtime, actor: Actor, data: dict[str, Any]) -> Submitted:
    """Accept a validated command (CommandSchema().load output) and start delivering it."""
    _require_sender(actor, "send")
    now = utcnow()
    digest = request_hash(data)
    with rt.db.session() as session:
        prior = _existing(session, actor, data.get("idempotency_key"))
        if prior is not None:
            return _replay(session, prior, digest)
        content = _content(session, data, now)
        priority = data.get("priority") or (content.priority if content else DEFAULT_PRIORITY)
        start_at, expires_at, scheduled = _times(rt, data, now)
        target = data["target"]
        try:
            # A geometry alone reaches only into the sender's areas: a commune operator drawing a
            # polygon across the commune line selects the devices on their side of it
            devices = resolve(session, target, within_paths=actor.area_paths(session))
        except TargetError as exc:
            raise DispatchError(exc.field, exc.message) from None
        check_scope(session, actor, target, devices)
        # sync_schedule slots hold datetimes, which a JSON column cannot store as they are
        params = json.loads(json.dumps(data.get("params") or {}, default=lambda o: o.isoformat()))
        cmd = Command(id=uuid.uuid4().hex, verb=data["verb"], params=params,
                      content_id=content.id if content else None, priority=priority, expires_at=expires_at,
                      idempotency_key=None if actor.user_id is not None else data.get("idempotency_key"),
                      account_idempotency_key=data.get("idempotency_key") if actor.user_id is not None else None,
                      request_hash=digest, issuer=actor.name, issuer_id=actor.user_id,
                      target=json.loads(json.dumps(target, default=str)), created_at=now, total=len(devices),
                      start_at=start_at, issuer_scope=issuer_scope(session, actor),
                      # a start_at within the grace is sent at once: nothing left for the scheduler
                      released_at=None if scheduled else (now if start_at is not None else None))
        session.add(cmd)
        need, because = _needs(cmd.verb, content)
        installed = set(rt.plugins.vendors())
        too_long = fit_checker(cmd.verb, params, content, rt.plugins.vendors())  # per board (led_fit)
        rows = []
        for d in devices:
            state, reason = _initial_state(d, need, installed, because)
            if state == DeliveryState.QUEUED and too_long is not None and (why := too_long(d)):
                state, reason = DeliveryState.FAILED, why
            if state == DeliveryState.QUEUED and scheduled:
                state = DeliveryState.SCHEDULED
            rows.append({"command_id": cmd.id, "device_id": d.id, "vendor": d.vendor, "state": state,
                         "reason": reason, "attempts": 0, "queued_at": now, "area_code": d.area_code,
                         "finished_at": None if state in (DeliveryState.QUEUED, DeliveryState.SCHEDULED) else now})
        try:
            session.flush()
        except IntegrityError:  # a concurrent request with the same idempotency key won the race
            session.rollback()
            prior = _existing(session, actor, data.get("idempotency_key"))
            if prior is None:
                raise
            return _replay(session, prior, digest)
        if rows:
            session.execute(Delivery.__table__.insert(), rows)
        waiting = [r["device_id"] for r in rows if r["state"] in (DeliveryState.QUEUED, DeliveryState.SCHEDULED)]
        _supersede(session, cmd, waiting, now, scheduled)
        # Last before commit: the audit append locks the chain head until then. Readers of the
        # log see a command in every area it reached and in those it named.
        reached = {d.area_code for d in devices} | set(target.get("areas") or ())
        audit.record(session, actor, "command.submit", "command", cmd.id,
                     {"verb": cmd.verb, "priority": priority, "target": cmd.target, "devices": len(devices),
                      **({"start_at": start_at.isoformat()} if start_at is not None else {})},
                     areas=reached)
    if scheduled:
        from hub.delivery.release import wake

        wake(rt)  # the scheduler may be sleeping until a later start
    else:
        _enqueue(rt, cmd)
    with rt.db.session() as session:
        return Submitted(cmd, True, counts(session, cmd.id))


def check_scope(session: Session, actor: Actor, target: dict[str, Any], devices: list[Device]) -> None:
    """Refuse the whole command if any named area or selected device lies outside the actor's areas."""
    if actor.unrestricted:
        return
    from hub.fleet.areas import subtree_paths

    try:
        named = subtree_paths(session, target.get("areas") or [])
        actor.check_paths(session, [(f"area {code}", path) for code, path in named.items()])
        # Only devices the target names are named back: one that an area or a group selects may lie
        # in another's area, and its id is not the caller's to learn.
        named_ids = set(target.get("devices") or ())
        actor.check_paths(session, [(f"device {d.id}" if d.id in named_ids else "a device the target selects",
                                     d.area.path) for d in devices])
        # A named device that a geometry left out is still named: naming it is refused all the same
        for chunk in chunks(sorted(named_ids - {d.id for d in devices})):
            actor.check_paths(session, [(f"device {did}", path) for did, path in session.execute(
                select(Device.id, Area.path).join(Area, Device.area_code == Area.code)
                .where(Device.id.in_(chunk)).order_by(Device.id))])
    except Forbidden as exc:
        raise DispatchError("target", str(exc), status=403) from None


def _supersede(session: Session, cmd: Command, device_ids: list[str], now: datetime, scheduled: bool) -> None:
    """Older commands for the same slot, not yet sent, of no higher class, give way (the rules are
    in this module's docstring)."""
    if not device_ids:
        return
    slot_verbs = [v for v, s in VERB_SLOT.items() if s == VERB_SLOT[cmd.verb]]
    classes = [p for p in PRIORITIES if PRIORITY_RANK[p] <= PRIORITY_RANK[cmd.priority]]
    if scheduled:
        state, which = DeliveryState.SCHEDULED, [Command.start_at == cmd.start_at]
        reason = f"superseded by command {cmd.id} (same start_at)"
    else:
        state, which = DeliveryState.QUEUED, [or_(Command.start_at.is_(None), Command.start_at <= now)]
        reason = f"superseded by command {cmd.id}"
    for chunk in chunks(device_ids, IN_LIST_MAX // 2):  # half: the statement has other lists too
        older = select(Delivery.id, Command.issuer_scope, Command.verb, Command.priority).join(
            Command, Command.id == Delivery.command_id).where(
            Delivery.state == state, Delivery.claimed_at.is_(None), Delivery.device_id.in_(chunk),
            Delivery.command_id != cmd.id, Command.verb.in_(slot_verbs), Command.priority.in_(classes), *which)
        ids = [did for did, scope, verb, priority in session.execute(older)
               if covers(cmd.issuer_scope, scope) and (scheduled or _replaces(cmd, verb, priority))]
        if ids:
            # claimed_at again here: a job may have claimed a row since the select
            session.execute(update(Delivery).where(Delivery.id.in_(ids), Delivery.state == state,
                                                   Delivery.claimed_at.is_(None))
                            .values(state=DeliveryState.SUPERSEDED, finished_at=now, reason=reason)
                            # no Delivery objects live in this session: skip scanning its devices
                            .execution_options(synchronize_session=False))


def _replaces(cmd: Command, verb: str, priority: str) -> bool:
    """Whether an immediate `cmd` replaces a waiting (verb, priority) of its slot: any older
    command unless both are plays, where only what the device would replace gives way."""
    if cmd.verb not in arbiter_rule.PLAY_VERBS or verb not in arbiter_rule.PLAY_VERBS:
        return True
    return arbiter_rule.decide((cmd.verb, cmd.priority), (verb, priority)) == arbiter_rule.REPLACE


JOB_PREFIX = "hub-"  # job ids are hub-<command id>-<random>, so a live job names its command


def _jobs(rt: Runtime, cmd: Command, ids_by_vendor: dict[str, list[int]]) -> list[Any]:
    queue = rt.queue(cmd.priority)
    size = rt.settings.batch_size
    jobs = []
    for vendor, ids in ids_by_vendor.items():
        for i in range(0, len(ids), size):
            jobs.append(queue.prepare_data(job_paths.SEND_BATCH, args=(cmd.id, vendor, ids[i:i + size]),
                                           timeout=max(60, int(sum(rt.settings.retry_backoff_s)) + 120),
                                           result_ttl=3600, failure_ttl=7 * 86400,
                                           job_id=f"{JOB_PREFIX}{cmd.id}-{secrets.token_hex(6)}",
                                           description=f"{cmd.verb} {cmd.id} via {vendor}"))
    return jobs


def _queued_by_vendor(rt: Runtime, command_id: str) -> dict[str, list[int]]:
    with rt.db.session() as session:
        rows = session.execute(select(Delivery.id, Delivery.vendor).where(
            Delivery.command_id == command_id, Delivery.state == DeliveryState.QUEUED).order_by(Delivery.id)).all()
    by_vendor: dict[str, list[int]] = defaultdict(list)
    for did, vendor in rows:
        by_vendor[vendor].append(did)
    return by_vendor


def _enqueue(rt: Runtime, cmd: Command) -> None:
    """One rq job per adapter batch. If the queue is down, the rows fail visibly, not silently."""
    jobs = _jobs(rt, cmd, _queued_by_vendor(rt, cmd.id))
    if not jobs:
        return
    try:
        rt.queue(cmd.priority).enqueue_many(jobs)
    except Exception as exc:  # Redis unreachable: say so on every row rather than leave them queued
        log.error("could not enqueue command %s: %s", cmd.id, exc)
        with rt.db.session() as session:
            session.execute(update(Delivery).where(Delivery.command_id == cmd.id,
                                                   Delivery.state == DeliveryState.QUEUED)
                            .values(state=DeliveryState.FAILED, finished_at=utcnow(),
                                    reason=f"job queue unavailable: {type(exc).__name__}: {exc}"[:500]))


def requeue_stale(rt: Runtime, now: datetime | None = None, emergency_only: bool = False) -> int:
    """Enqueue again the deliveries whose job was lost or died (hub.delivery.recovery.requeue_orphans)."""
    from hub.delivery.recovery import requeue_orphans

    return requeue_orphans(rt, now, emergency_only=emergency_only)


def cancel(rt: Runtime, actor: Actor, command_id: str) -> Submitted:
    """Cancel a scheduled command before it starts: its rows not yet sent (`scheduled`, or
    `queued` on a worker waiting for the start) end `superseded`, "cancelled by <actor>".

    The same rights as sending it: a command sender whose areas hold every device it reached and
    every area it named. A worker already holding the command hears of it on Redis and skips it."""
    _require_sender(actor, "cancel")
    now = utcnow()
    with rt.db.session() as session:
        cmd = session.get(Command, command_id)
        if cmd is None:
            raise DispatchError(None, f"no command {command_id}", status=404)
        devices = list(session.scalars(select(Device).join(Delivery, Delivery.device_id == Device.id)
                                       .where(Delivery.command_id == cmd.id)))
        check_scope(session, actor, cmd.target or {}, devices)
        if cmd.start_at is None:
            raise DispatchError(None, f"command {cmd.id} was not scheduled (no start_at): it was sent at once "
                                      "and cannot be cancelled", status=409)
        if cmd.cancelled_at is not None:
            raise DispatchError(None, f"command {cmd.id} was already cancelled by {cmd.cancelled_by} at "
                                      f"{cmd.cancelled_at.isoformat(timespec='seconds')}", status=409)
        if cmd.start_at <= now:
            raise DispatchError(None, f"command {cmd.id} started at {cmd.start_at.isoformat()}; too late to "
                                      "cancel (send a stop instead)", status=409)
        session.execute(update(Delivery).where(Delivery.command_id == cmd.id,
                                               Delivery.state.in_((DeliveryState.SCHEDULED, DeliveryState.QUEUED)))
                        .values(state=DeliveryState.SUPERSEDED, finished_at=now, reason=f"cancelled by {actor.name}")
                        .execution_options(synchronize_session=False))
        cmd.cancelled_at, cmd.cancelled_by = now, actor.name
        reached = {d.area_code for d in devices} | set((cmd.target or {}).get("areas") or ())
        audit.record(session, actor, "command.cancel", "command", cmd.id,
                     {"verb": cmd.verb, "start_at": cmd.start_at.isoformat()}, areas=reached)
    from hub.delivery.release import announce_cancel

    announce_cancel(rt, command_id)
    with rt.db.session() as session:
        return Submitted(cmd, False, counts(session, cmd.id))
