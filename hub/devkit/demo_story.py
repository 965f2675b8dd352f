"""The story `hub demo` tells, step by step in Vietnamese and English: the fleet comes up, the
morning programme plays, a CAP storm warning arrives from a local feed, is approved, spoken offline
and pre-empts the programme on exactly the speakers of the communes it names, and the programme
resumes — as the as-run log (what the devices reported, never the plan) shows.

Every step goes through the hub's own paths: the programme through hub.broadcast.editing and the
materialiser, the warning through a sources file, the poller and the `cap` plugin
(hub.content.polling), the workflow's submit / approve / publish (hub.content.editing), the
one-step emergency (hub.broadcast.emergency). The source is configured `emergency: draft`, as a
province would: a warning from outside waits for a person, here the demo's approver.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
from sqlalchemy import select

from hub.access.actors import Actor
from hub.broadcast import editing as programmes
from hub.broadcast import emergency
from hub.broadcast.ics import new_calendar, to_text
from hub.broadcast.materialise import ISSUER
from hub.broadcast.programmes import LOCAL_TZ
from hub.content import editing, publishing
from hub.content.intake import target_for
from hub.content.polling import Poller
from hub.runtime import Runtime
from hub.store.as_run_tables import AsRunSegment
from hub.store.models import TERMINAL_STATES, Area, Command, Content, Delivery, Device, DeviceStatus

Echo = Callable[[str], Any]
PROVINCE = "80"
SOURCE = "kttv-demo"  # the sources-file entry of the storm warning's feed
# long enough (about half a minute) that a slow machine still has it playing when the warning arrives
MORNING_TEXT = ("Bản tin sáng. Xã nhà thông báo lịch tiêm chủng mở rộng cho trẻ em vào sáng thứ bảy tại trạm y tế. "
                "Bà con lưu ý giữ gìn vệ sinh môi trường, khơi thông cống rãnh trước mùa mưa bão. "
                "Hội nông dân mở lớp tập huấn kỹ thuật trồng lúa chất lượng cao, bà con đăng ký tại văn phòng ấp. "
                "Ủy ban nhân dân xã nhắc bà con kiểm tra giấy tờ đất đai, nộp thuế đúng hạn và tham gia bảo hiểm y "
                "tế hộ gia đình. Chi đoàn thanh niên tổ chức ngày chủ nhật xanh, dọn rác ven kênh và trồng cây.")
SLOT = timedelta(minutes=30)  # the programme's slot: still open when the warning ends, so it resumes


@dataclass
class Cast:
    """The demo's accounts acting in the story."""

    admin: Actor
    operator: Actor
    editor: Actor
    approver: Actor


@dataclass
class Told:
    """What the story did, for the caller (and its tests)."""

    programme_command: str = ""
    emergency_command: str = ""
    emergency_title: str = ""
    targeted: list[str] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)


def say(echo: Echo, step: str, vi: str, en: str) -> None:
    echo(f"\n[{step}] {vi}\n    {en}")


def wait(predicate: Callable[[], bool], timeout: float, every: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def hms(at: datetime | None) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%H:%M:%S") if at else "…"


# -- 1. the fleet --------------------------------------------------------------------------------
def fleet_summary(rt: Runtime, echo: Echo) -> None:
    """Counts, not rows: the province has no districts since 1 July 2025, so per commune."""
    with rt.db.session() as s:
        rows = s.execute(select(Device.kind, Device.area_code, DeviceStatus.online)
                         .join(DeviceStatus, DeviceStatus.device_id == Device.id, isouter=True)).all()
        names = dict(s.execute(select(Area.code, Area.name)).tuples().all())
    total, online = Counter(k for k, _, _ in rows), Counter(k for k, _, on in rows if on)
    per_commune = Counter(a for k, a, _ in rows if k == "speaker")
    missing = Counter(a for k, a, on in rows if k == "speaker" and not on)
    spread = f"{min(per_commune.values())}–{max(per_commune.values())}" if per_commune else "0"
    say(echo, "1", f"Đội loa mô phỏng Long An đã lên mạng: {online['speaker']}/{total['speaker']} cụm loa, "
                   f"{online['led_board']}/{total['led_board']} bảng tin, {len(per_commune)} xã/phường tỉnh {PROVINCE}.",
        f"The simulated Long An fleet is up: {online['speaker']}/{total['speaker']} speaker clusters and "
        f"{online['led_board']}/{total['led_board']} LED boards online in {len(per_commune)} communes of "
        f"province {PROVINCE}.")
    short = ", ".join(f"{names.get(a, a)} {per_commune[a] - n}/{per_commune[a]}" for a, n in missing.most_common(5))
    echo(f"    {spread} cụm loa mỗi xã / speakers per commune; "
         + (f"xã thiếu loa / communes not fully online: {short}" if missing else
            "mọi xã đủ loa trực tuyến / every commune fully online"))


# -- 2. the morning programme --------------------------------------------------------------------
def _calendar(start: datetime) -> str:
    event = icalendar.Event()
    event.add("uid", "demo-ban-tin-sang")
    event.add("dtstart", start.astimezone(LOCAL_TZ).replace(microsecond=0, tzinfo=None))
    event.add("duration", SLOT)
    cal = new_calendar()
    cal.add_component(event)
    return to_text(cal)


def _segments(rt: Runtime, command_ids: list[str]) -> list[AsRunSegment]:
    with rt.db.session() as s:
        rows = list(s.scalars(select(AsRunSegment).where(AsRunSegment.command_id.in_(command_ids))
                              .order_by(AsRunSegment.id)))
        s.expunge_all()
    return rows


def morning_programme(rt: Runtime, cast: Cast, told: Told, echo: Echo) -> None:
    """A normal-class programme slot of a published bulletin, starting in a few seconds."""
    with rt.db.session() as s:
        content = editing.create(s, cast.admin, {"title": "Bản tin sáng", "kind": "tts_text", "language": "vi",
                                                 "body": MORNING_TEXT, "area_code": PROVINCE})
        editing.transition(s, cast.admin, content, "approve_and_publish")
        cid = content.id
    publishing.speak(rt, [cid])
    start = datetime.now(LOCAL_TZ) + timedelta(seconds=3)
    saved = programmes.create(rt, cast.admin, {"name": "Bản tin sáng", "ical": _calendar(start), "content_id": cid,
                                               "target": {"areas": [PROVINCE], "kinds": ["speaker"]}})
    pid = saved.programmes[0].id
    with rt.db.session() as s:
        told.programme_command = s.scalar(select(Command.id).where(
            Command.issuer == ISSUER.name, Command.idempotency_key.like(f"programme:{pid}:%")))
        speakers = len(s.scalars(select(Device.id).where(Device.kind == "speaker")).all())
        duration = ((s.get(Content, cid).media or {}).get("duration_s") or 0)
    say(echo, "2", f"Chương trình buổi sáng \"Bản tin sáng\" (lớp thường, {duration:.0f} giây) lúc {hms(start)}.",
        f"The morning programme \"Bản tin sáng\" (normal class, {duration:.0f} s) starts at {hms(start)}.")
    playing = lambda: len({g.device_id for g in _segments(rt, [told.programme_command])}) >= speakers  # noqa: E731
    wait(playing, 60)
    n = len({g.device_id for g in _segments(rt, [told.programme_command])})
    echo(f"    đang phát trên {n}/{speakers} cụm loa / playing on {n}/{speakers} speakers")


# -- 3-5. the storm warning ----------------------------------------------------------------------
def write_sources(path: Path, feed_url: str) -> None:
    """The sources file's entry for the demo's feed (docs/sources.md)."""
    path.write_text(f"sources:\n  - name: {SOURCE}\n    plugin: cap\n    interval_s: 60\n    area_code: \"{PROVINCE}\"\n"
                    f"    category: canh_bao\n    emergency: draft\n    url: {feed_url}\n", encoding="utf-8")


def storm_warning(rt: Runtime, cast: Cast, feed_url: str, told: Told, echo: Echo) -> dict[str, Any]:
    Poller(rt).tick()  # the sources file names the feed: one poll job on the sources queue

    def arrived() -> Content | None:
        with rt.db.session() as s:
            c = s.scalars(select(Content).where(Content.source == SOURCE)).first()
            if c is not None:
                s.expunge(c)
            return c
    if not wait(lambda: arrived() is not None, 60):
        raise RuntimeError(f"the storm warning did not arrive from {feed_url}")
    content = arrived()
    assert content is not None
    target = target_for(content)
    with rt.db.session() as s:
        names = [n for (n,) in s.execute(select(Area.name).where(Area.code.in_(target.get("areas") or ())))]
    told.emergency_title = content.title
    say(echo, "3", f"Cảnh báo bão CAP đến từ nguồn cấp cục bộ: \"{content.title}\" ({', '.join(names)}).",
        f"A CAP storm warning arrives from the local feed {feed_url}: class {content.priority}, "
        f"status {content.status}, for {len(names)} communes.")
    with rt.db.session() as s:
        c = s.get(Content, content.id)
        editing.transition(s, cast.editor, c, "submit")
        editing.transition(s, cast.approver, c, "approve")
        editing.transition(s, cast.approver, c, "publish")
    spoken = publishing.speak(rt, [content.id]).get(content.id)
    with rt.db.session() as s:
        c = s.get(Content, content.id)
        media, speech = c.media or {}, c.speech or {}
    say(echo, "4", f"Cảnh báo từ nguồn CAP chờ người duyệt: {cast.editor.name} gửi duyệt, {cast.approver.name} duyệt "
                   f"và xuất bản; đọc offline bằng {speech.get('provider')}: {media.get('duration_s', 0):.0f} giây.",
        f"The CAP source leaves warnings for a person (emergency: draft): {cast.editor.name} submits, "
        f"{cast.approver.name} approves and publishes; spoken offline by {speech.get('provider')} "
        f"({media.get('duration_s', 0):.0f} s, {spoken}).")
    answer, _ = emergency.fire(rt, cast.admin, {"content_id": content.id, "target": target})
    told.emergency_command = answer["commands"]["play"] or answer["command_id"]
    with rt.db.session() as s:
        told.targeted = list(s.scalars(select(Device.id).where(
            Device.kind == "speaker", Device.area_code.in_(target.get("areas") or ())).order_by(Device.id)))
    say(echo, "5", f"{cast.admin.name} phát khẩn cấp: {answer['reaches']} thiết bị ở {answer['communes']} xã; "
                   f"ngắt chương trình buổi sáng tại đó.",
        f"{cast.admin.name} fires it as the one-step emergency: {answer['reaches']} devices in "
        f"{answer['communes']} communes; it pre-empts the morning programme there.")
    return answer


# -- 6-7. pre-emption and resume -----------------------------------------------------------------
def preemption(rt: Runtime, told: Told, echo: Echo, resume_timeout: float = 120) -> None:
    def done() -> bool:
        with rt.db.session() as s:
            states = list(s.scalars(select(Delivery.state).where(Delivery.command_id == told.emergency_command)))
        return bool(states) and all(st in TERMINAL_STATES for st in states)
    wait(done, 60)
    cut = lambda: sorted({g.device_id for g in _segments(rt, [told.programme_command])  # noqa: E731
                          if g.interrupted_by == told.emergency_command})
    wait(lambda: len(cut()) >= len(told.targeted), 30)
    told.preempted = cut()
    with rt.db.session() as s:
        acked = Counter(s.scalars(select(Delivery.state).where(Delivery.command_id == told.emergency_command)))
        speakers = len(s.scalars(select(Device.id).where(Device.kind == "speaker")).all())
    exact = told.preempted == told.targeted
    say(echo, "6", (f"Ngắt đúng {len(told.preempted)} cụm loa của các xã được cảnh báo" if exact else
                    f"Ngắt {len(told.preempted)} cụm loa, cảnh báo nhắm {len(told.targeted)}")
        + f"; {speakers - len(told.preempted)} cụm loa khác vẫn phát chương trình.",
        (f"pre-empted on exactly the {len(told.preempted)} speakers" if exact else
         f"WARNING: pre-empted on {len(told.preempted)} speakers, targeted {len(told.targeted)}")
        + f" of the warned communes; the other {speakers - len(told.preempted)} played on. Deliveries: "
        + ", ".join(f"{k} {v}" for k, v in sorted(acked.items())))

    def resumed() -> list[str]:
        return sorted({g.device_id for g in _segments(rt, [told.programme_command])
                       if g.resume_of == told.programme_command})
    wait(lambda: set(told.preempted) <= set(resumed()), resume_timeout)
    told.resumed = [d for d in resumed() if d in told.preempted]
    say(echo, "7", f"Hết cảnh báo, chương trình buổi sáng phát lại trên {len(told.resumed)} cụm loa.",
        f"When the warning ends the programme resumes on {len(told.resumed)}/{len(told.preempted)} speakers.")
    if told.preempted:
        as_run_lines(rt, told, told.preempted[0], echo)


def as_run_lines(rt: Runtime, told: Told, device: str, echo: Echo) -> None:
    """Three lines of one speaker's as-run log: what it reported playing, in order."""
    rows = _segments(rt, [told.programme_command, told.emergency_command])
    rows = [g for g in rows if g.device_id == device][:3]
    with rt.db.session() as s:
        titles = dict(s.execute(select(Content.id, Content.title).where(
            Content.id.in_({g.content_id for g in rows if g.content_id}))).tuples().all())
    echo(f"    as-run {device}:")
    for g in rows:
        what = ("resumed, " if g.resume_of else "") + g.outcome
        if g.interrupted_by:
            what += f" by {g.interrupted_by_class}"
        echo(f"      {hms(g.started_at)}–{hms(g.ended_at) if g.ended_at else '       '}  {g.priority:<9} "
             f"{what:<28} {titles.get(g.content_id or '', '')[:40]}")
