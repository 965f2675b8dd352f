"""A seeded week (Monday 3 – Sunday 9 November 2025, Asia/Ho_Chi_Minh) of as-run, delivery and health
data, written through the real tables and the real recorders — devices by hub.fleet.registry,
operating-state changes by hub.fleet.health.record, segments by hub.delivery.as_run.record from
acks and status — and, in EXPECTED, the figures a person counts from the story below by hand.

The tree (tests/data/legacy-three-level.yaml): 80 > 794 > 27694 (A1, A2), 27697 (B1);
80 > 807 > 28099 (C2) > village 28099-A1 (C1, counted for commune 28099).

Health (all registered Sunday 2 Nov): A1 online all week (7 of 7 days up); A2 offline Wednesday
(6/7); B1 offline from Saturday (5/7); C1 online (7/7); C2 never heard from (0/7).

Plays (content durations: K1, K3 10 min; K2 5 min; KE 1 min):
* P1 normal K1 (category thoi-su, province's: provincial), Monday 06:00 local — which is still Sunday
  23:00 in UTC — to A1, A2, B1, C1: all acked and played 10 min;
* P2 priority K2 (nong-nghiep, commune 27694's: local), Tuesday 19:00, to A1 (played 5 min) and A2
  (expired: not played);
* P3 normal K3 (thoi-su, from source quoc-gia run by the `national` plugin: national), Sunday 23:30
  local, to B1 (played 10 min, the week's) and C2 (refused: not played);
* E1 emergency KE (canh-bao, provincial), Thursday 10:00, to A1, A2, B1, C1 (acked after 2, 4, 3,
  10 s; each played 1 min) and C2 (expired: not played);
* V1 volume, Wednesday, to A1 (acked) and A2 (failed);
* P4 normal K1, the next Monday 00:30 local (Sunday 17:30 UTC): outside the week.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from hub.delivery import as_run
from hub.fleet import health
from hub.fleet.registry import upsert_device
from hub.store.models import Command, Content, Delivery, DeliveryState, Device, SourceStatus
from hub.store.statistics_tables import DeviceStateLog

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY, SUNDAY = date(2025, 11, 3), date(2025, 11, 9)
AREAS = {"A1": "27694", "A2": "27694", "B1": "27697", "C1": "28099-A1", "C2": "28099"}


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time of November 2025 in the province."""
    return datetime(2025, 11, day, hour, minute, second, tzinfo=TZ)


def _row(p: dict[str, Any], by_class: dict[str, int], minutes: float, origin: dict[str, int],
         category: dict[str, int]) -> dict[str, Any]:
    return {**p, "bulletins_by_class": {"normal": 0, "priority": 0, "emergency": 0, **by_class},
            "minutes_broadcast": minutes, "bulletins_by_origin": {"national": 0, "provincial": 0, "local": 0, **origin},
            "bulletins_by_category": category}


# Counted by hand from the story above; parents are written out, not summed by code.
EXPECTED = {
    "27694": _row({"devices": 2, "uptime_percent": 92.86, "bulletins": 3, "distinct_bulletins": 3,
                   "deliveries": 8, "deliveries_acked": 6, "delivery_success_percent": 75.0,
                   "emergency_targeted": 2, "emergency_acked": 2, "emergency_ack_p50_s": 2.0,
                   "emergency_ack_p99_s": 4.0, "not_played": 1},
                  {"normal": 1, "priority": 1, "emergency": 1}, 27.0, {"provincial": 2, "local": 1},
                  {"thoi-su": 1, "nong-nghiep": 1, "canh-bao": 1}),
    "27697": _row({"devices": 1, "uptime_percent": 71.43, "bulletins": 3, "distinct_bulletins": 3,
                   "deliveries": 3, "deliveries_acked": 3, "delivery_success_percent": 100.0,
                   "emergency_targeted": 1, "emergency_acked": 1, "emergency_ack_p50_s": 3.0,
                   "emergency_ack_p99_s": 3.0, "not_played": 0},
                  {"normal": 2, "emergency": 1}, 21.0, {"national": 1, "provincial": 2},
                  {"thoi-su": 2, "canh-bao": 1}),
    "28099": _row({"devices": 2, "uptime_percent": 50.0, "bulletins": 2, "distinct_bulletins": 2,
                   "deliveries": 4, "deliveries_acked": 2, "delivery_success_percent": 50.0,
                   "emergency_targeted": 2, "emergency_acked": 1, "emergency_ack_p50_s": 10.0,
                   "emergency_ack_p99_s": 10.0, "not_played": 2},
                  {"normal": 1, "emergency": 1}, 11.0, {"provincial": 2}, {"thoi-su": 1, "canh-bao": 1}),
    "794": _row({"devices": 3, "uptime_percent": 85.71, "bulletins": 6, "distinct_bulletins": 4,
                 "deliveries": 11, "deliveries_acked": 9, "delivery_success_percent": 81.82,
                 "emergency_targeted": 3, "emergency_acked": 3, "emergency_ack_p50_s": 3.0,
                 "emergency_ack_p99_s": 4.0, "not_played": 1},
                {"normal": 3, "priority": 1, "emergency": 2}, 48.0, {"national": 1, "provincial": 4, "local": 1},
                {"thoi-su": 3, "nong-nghiep": 1, "canh-bao": 2}),
    "807": _row({"devices": 2, "uptime_percent": 50.0, "bulletins": 2, "distinct_bulletins": 2,
                 "deliveries": 4, "deliveries_acked": 2, "delivery_success_percent": 50.0,
                 "emergency_targeted": 2, "emergency_acked": 1, "emergency_ack_p50_s": 10.0,
                 "emergency_ack_p99_s": 10.0, "not_played": 2},
                {"normal": 1, "emergency": 1}, 11.0, {"provincial": 2}, {"thoi-su": 1, "canh-bao": 1}),
    "80": _row({"devices": 5, "uptime_percent": 71.43, "bulletins": 8, "distinct_bulletins": 4,
                "deliveries": 15, "deliveries_acked": 11, "delivery_success_percent": 73.33,
                "emergency_targeted": 5, "emergency_acked": 4, "emergency_ack_p50_s": 3.0,
                "emergency_ack_p99_s": 10.0, "not_played": 3},
               {"normal": 4, "priority": 1, "emergency": 3}, 59.0, {"national": 1, "provincial": 6, "local": 1},
               {"thoi-su": 4, "nong-nghiep": 1, "canh-bao": 3}),
}
NOT_PLAYED = {"A2": ["P2"], "C2": ["E1", "P3"]}  # device → commands (sorted)


def _content(s: Any, cid: str, category: str, area: str, seconds: int, source: str | None = None,
             priority: str = "normal") -> None:
    s.add(Content(id=cid, title=f"Bản tin {cid}", kind="audio_file", created_by="editor-1", category=category,
                  area_code=area, source=source, priority=priority, created_at=local(1, 8),
                  media={"uri": f"http://127.0.0.1:9/{cid}.mp3", "duration_s": seconds}))


def _command(s: Any, cid: str, verb: str, content: str | None, priority: str, at: datetime,
             outcomes: dict[str, tuple[str, float | None]]) -> None:
    """A command issued at `at` and its deliveries as dispatch writes them (with the device's area),
    each ended in `state` `after` seconds."""
    s.add(Command(id=cid, verb=verb, content_id=content, priority=priority, params={}, request_hash="x",
                  issuer="editor-1", issuer_id=None, target={"devices": sorted(outcomes)}, created_at=at,
                  start_at=at, released_at=at, expires_at=at + timedelta(hours=1), total=len(outcomes)))
    s.flush()
    for did, (state, after) in outcomes.items():
        done = at + timedelta(seconds=after or 1)
        s.add(Delivery(command_id=cid, device_id=did, vendor="loopback", state=state, attempts=1, queued_at=at,
                       sent_at=at, finished_at=done, area_code=s.get(Device, did).area_code,
                       reason=None if state == DeliveryState.ACKED else f"{state} in the seeded week"))


def _play(rt: Any, did: str, cid: str, start: datetime, seconds: int) -> None:
    """The device acks that it plays, then reports idle when it ended: the recorder's own input."""
    for seen in (as_run.Seen(did, start, "playing", command_id=cid),
                 as_run.Seen(did, start + timedelta(seconds=seconds), "idle")):
        with rt.db.session() as s:
            as_run.record(s, [seen], set(), seen.at)


def seed(rt: Any) -> None:
    """Writes the week into `rt`'s database (the legacy areas and the loopback vendor loaded)."""
    registered = local(2, 0)
    with rt.db.session() as s:
        for did, area in AREAS.items():
            upsert_device(s, rt.plugins, {"id": did, "name": f"Loa {did}", "vendor": "loopback", "kind": "speaker",
                                          "area_code": area, "address": f"ok-{did.lower()}", "tags": []})
        s.flush()
        # registered the Sunday before the week (upsert_device stamps now)
        s.execute(update(Device).values(created_at=registered))
        s.execute(update(DeviceStateLog).values(at=registered))
        s.add(SourceStatus(name="quoc-gia", plugin="national"))
        _content(s, "K1", "thoi-su", "80", 600)
        _content(s, "K2", "nong-nghiep", "27694", 300)
        _content(s, "K3", "thoi-su", "80", 600, source="quoc-gia")
        _content(s, "KE", "canh-bao", "80", 60, priority="emergency")
        ok, acked = DeliveryState.ACKED, (DeliveryState.ACKED, 2)
        _command(s, "P1", "play", "K1", "normal", local(3, 6), {d: acked for d in ("A1", "A2", "B1", "C1")})
        _command(s, "P2", "play", "K2", "priority", local(4, 19), {"A1": acked, "A2": (DeliveryState.EXPIRED, None)})
        _command(s, "V1", "volume", None, "normal", local(5, 9), {"A1": acked, "A2": (DeliveryState.FAILED, None)})
        _command(s, "E1", "play", "KE", "emergency", local(6, 10),
                 {"A1": (ok, 2), "A2": (ok, 4), "B1": (ok, 3), "C1": (ok, 10), "C2": (DeliveryState.EXPIRED, None)})
        _command(s, "P3", "play", "K3", "normal", local(9, 23, 30), {"B1": acked, "C2": (DeliveryState.FAILED, None)})
        _command(s, "P4", "play", "K1", "normal", local(10, 0, 30), {"A1": acked})
        changes = [("A1", "online", local(3, 0)), ("A2", "online", local(3, 0)), ("B1", "online", local(3, 0)),
                   ("C1", "online", local(3, 0)), ("A2", "offline", local(5, 0)), ("A2", "online", local(6, 0)),
                   ("B1", "degraded", local(7, 12)), ("B1", "offline", local(8, 0))]
        health.record(s, [health.StateChange(d, st, "unknown", None, at) for d, st, at in changes])
    for did in ("A1", "A2", "B1", "C1"):
        _play(rt, did, "P1", local(3, 6, 0, 2), 600)
    _play(rt, "A1", "P2", local(4, 19, 0, 2), 300)
    for did, after in (("A1", 2), ("A2", 4), ("B1", 3), ("C1", 10)):
        _play(rt, did, "E1", local(6, 10, 0, after), 60)
    _play(rt, "B1", "P3", local(9, 23, 30, 2), 600)  # Sunday 23:30 local: the week's
    _play(rt, "A1", "P4", local(10, 0, 30, 2), 600)  # Monday 00:30 local, still Sunday in UTC: the next week's
