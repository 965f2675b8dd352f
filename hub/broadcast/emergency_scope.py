"""How far an emergency reaches: N devices in M communes, by kind and vendor, and by name the
devices of its target that cannot receive it.

The preview predicts it from the devices (enabled, vendor installed, capabilities, known offline);
the answer to firing counts the delivery rows the dispatcher actually wrote, so what it promises is
what the rows say. A device "reaches" when the hub sends to it and it is not known to be offline;
an offline device is still sent to (it may come back before the emergency expires) but is named
among those that cannot receive it, with why. A device's commune is its nearest area of type
`commune` (itself or above: a village counts for its commune), else its own area.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.access.actors import Actor, Forbidden
from hub.capabilities import required_capabilities
from hub.delivery.dispatch import DispatchError
from hub.fleet.areas import AreaError, subtree_paths
from hub.fleet.targeting import TargetError, resolve
from hub.store.batching import chunks
from hub.store.models import Area, Delivery, DeliveryState, Device, DeviceStatus

# What each kind of device gets: speakers the audio, boards the text.
VERB_OF_KIND = {"speaker": "play", "led_board": "led_show"}
COMMUNE = "commune"
SENDING = (DeliveryState.QUEUED, DeliveryState.SENT, DeliveryState.ACKED)


@dataclass(frozen=True)
class Fate:
    """What becomes of one device: the delivery state it starts in (or will), and why not a plain
    `queued` when it is not; `offline` when its health says so."""

    device_id: str
    kind: str
    vendor: str
    area_code: str
    state: str
    reason: str | None = None
    offline_since: str | None = None

    @property
    def reaches(self) -> bool:
        return self.state in SENDING and not self.offline_since


def targeted(session: Session, actor: Actor, target: dict[str, Any]) -> list[Device]:
    """The devices `target` selects, refused whole (403 naming `target`) when any named area or
    selected device lies outside the actor's areas — the dispatcher's rule, checked before
    anything is written so that a preview refuses what firing would."""
    try:
        devices = resolve(session, target, within_paths=actor.area_paths(session))
    except TargetError as exc:
        raise DispatchError(exc.field, exc.message) from None
    if actor.unrestricted:
        return devices
    try:
        named = subtree_paths(session, target.get("areas") or [])
        actor.check_paths(session, [(f"area {code}", path) for code, path in named.items()])
        named_ids = set(target.get("devices") or ())
        actor.check_paths(session, [(f"device {d.id}" if d.id in named_ids else "a device the target selects",
                                     d.area.path) for d in devices])
    except (Forbidden, AreaError) as exc:
        raise DispatchError("target", str(exc), status=403) from None
    return devices


def by_kind(devices: Iterable[Device]) -> dict[str, list[Device]]:
    out: dict[str, list[Device]] = {kind: [] for kind in VERB_OF_KIND}
    for d in devices:
        out.setdefault(d.kind, []).append(d)
    return out


def _offline(session: Session, ids: list[str]) -> dict[str, str]:
    """Device id → since when (ISO, or "unknown time") for the devices known to be offline."""
    out: dict[str, str] = {}
    for chunk in chunks(ids):
        for did, since in session.execute(select(DeviceStatus.device_id, DeviceStatus.state_since)
                                          .where(DeviceStatus.device_id.in_(chunk),
                                                 DeviceStatus.operating_state == "offline")):
            out[did] = since.isoformat(timespec="seconds") if since else "unknown time"
    return out


def predicted(session: Session, devices: list[Device], installed: Iterable[str], kinds_sent: dict[str, str | None],
              has_audio: bool = True) -> list[Fate]:
    """Each device's fate if the emergency fired now. `kinds_sent`: kind → the content kind its
    verb carries (None: the verb carries text), or the kind missing when that kind gets nothing."""
    installed = set(installed)
    offline = _offline(session, [d.id for d in devices])
    fates = []
    for d in devices:
        state, reason = DeliveryState.QUEUED, None
        if d.kind not in kinds_sent:
            state, reason = DeliveryState.UNSUPPORTED, f"a {d.kind} cannot play or show this content"
        elif d.admin_state != "enabled":
            state, reason = DeliveryState.FAILED, "device disabled by administrator"
        elif d.vendor not in installed:
            state, reason = DeliveryState.FAILED, f"vendor plugin {d.vendor} is not installed on this hub"
        else:
            need = required_capabilities(VERB_OF_KIND[d.kind], kinds_sent[d.kind], has_audio)
            lacking = sorted(need - set(d.capabilities or ()))
            if lacking:
                state, reason = DeliveryState.UNSUPPORTED, f"device lacks {', '.join(lacking)}"
        fates.append(Fate(d.id, d.kind, d.vendor, d.area_code, state, reason, offline.get(d.id)))
    return fates


def actual(session: Session, command_ids: list[str], devices: list[Device],
           unsent_reason: str | None = None) -> list[Fate]:
    """Each targeted device's fate from the rows its command holds now. A device no command
    reached (its kind got nothing) is `unsupported` with `unsent_reason`."""
    rows: dict[str, tuple[str, str | None]] = {}
    for cid in command_ids:
        for did, state, reason in session.execute(select(Delivery.device_id, Delivery.state, Delivery.reason)
                                                  .where(Delivery.command_id == cid)):
            rows[did] = (state, reason)
    offline = _offline(session, [d.id for d in devices])
    out = []
    for d in devices:
        state, reason = rows.get(d.id, (DeliveryState.UNSUPPORTED,
                                        unsent_reason or f"a {d.kind} cannot play or show this content"))
        out.append(Fate(d.id, d.kind, d.vendor, d.area_code, state, reason, offline.get(d.id)))
    return out


def communes(session: Session, area_codes: Iterable[str]) -> dict[str, str]:
    """Area code → the code of its commune (itself or its nearest ancestor of type commune; its
    own code when none is)."""
    codes = set(area_codes)
    paths = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(codes))).all()) if codes else {}
    chain = {code: [c for c in path.strip("/").split("/") if c] for code, path in paths.items()}
    every = {c for cs in chain.values() for c in cs}
    kinds = dict(session.execute(select(Area.code, Area.type).where(Area.code.in_(every))).all()) if every else {}
    out = {}
    for code in codes:
        up = [c for c in reversed(chain.get(code, [code])) if kinds.get(c) == COMMUNE]
        out[code] = up[0] if up else code
    return out


def summary(session: Session, fates: list[Fate]) -> dict[str, Any]:
    """The answer's scope: what reaches, in how many communes, by kind and vendor, and by name
    the devices that cannot receive it."""
    commune_of = communes(session, {f.area_code for f in fates})
    reach = [f for f in fates if f.reaches]
    places = {commune_of[f.area_code] for f in reach}
    kinds, vendors = Counter(f.kind for f in fates), Counter(f.vendor for f in fates)
    cannot = []
    for f in fates:
        if f.reaches:
            continue
        sent_anyway = f.offline_since is not None and f.state in SENDING
        cannot.append({"device_id": f.device_id, "kind": f.kind, "vendor": f.vendor, "area_code": f.area_code,
                       "commune": commune_of[f.area_code], "state": "offline" if sent_anyway else f.state,
                       "reason": (f"offline since {f.offline_since}: sent all the same, it ends expired unless the "
                                  "device comes back before the emergency expires") if sent_anyway else f.reason})
    n, m = len(reach), len(places)
    return {
        "devices": len(fates), "reaches": n, "communes": m,
        "summary": f"{n} device{'s' * (n != 1)} in {m} commune{'s' * (m != 1)}",
        "by_kind": {k: {"targeted": kinds[k], "reaches": sum(f.kind == k for f in reach)} for k in sorted(kinds)},
        "by_vendor": {v: {"targeted": vendors[v], "reaches": sum(f.vendor == v for f in reach)}
                      for v in sorted(vendors)},
        "cannot_receive": sorted(cannot, key=lambda c: c["device_id"]),
    }
