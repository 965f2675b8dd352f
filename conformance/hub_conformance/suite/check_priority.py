"""The three bulletin classes of circular 39/2020/TT-BTTTT on one device: emergency plays at
once, priority goes ahead of normal, normal follows the schedule, and a lower class never cuts
off a higher one."""
from __future__ import annotations

import time
from datetime import timedelta

from hub.vendor_traits import traits_of

from hub_conformance.dut import utcnow
from hub_conformance.suite.common import expect, is_source, playing, require_source, requirement


def _playing(dut, device, priority: str, *, short: bool = False):  # noqa: ANN001, ANN202
    """Start a bulletin of `priority` and wait until it is seen playing (a precondition)."""
    content, ans = dut.play(device, priority, short=short)
    ok, seen, how = False, {}, "not observed"
    if ans.acked:
        ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") == "playing",
                                          dut.limit("status_timeout_s"))
    if ok:
        require_source(seen, how)
        ok = is_source(seen.get("source"), content)
    expect(ans.acked and ok, f"precondition: a {priority} bulletin could not be made to play "
                             f"(play {ans.describe()}; {how}: activity {seen.get('activity')!r}, "
                             f"source {seen.get('source')!r}) — see PLAY-01")
    return content


@requirement("PRIO-01")
def check_emergency_preempts(dut, device) -> None:  # noqa: ANN001
    normal = _playing(dut, device, "normal")
    emergency, ans = dut.play(device, "emergency")
    dut.expect_acked(ans, "emergency play")
    limit = dut.limit("status_timeout_s")
    ok, seen, how = dut.wait_observed(device, playing(emergency), limit)
    what = "the normal bulletin" if is_source(seen.get("source"), normal) else repr(seen.get("source"))
    expect(ok, f"the emergency bulletin did not pre-empt within {limit:g} s: the device plays {what} ({how}"
               f"{'; the device queued it' if (ans.result or {}).get('queued') else ''})")
    dut.note(f"emergency playing {ans.latency_s:.2f} s after it was sent")


@requirement("PRIO-04")
def check_lower_class_does_not_interrupt(dut, device) -> None:  # noqa: ANN001
    emergency = _playing(dut, device, "emergency")
    for cls in ("normal", "priority"):
        _content, ans = dut.play(device, cls)
        expect(ans.state in ("acked", "failed") or ans.held,
               f"a {cls} bulletin during an emergency: {ans.describe()}")
    held, seen, how = dut.hold_observed(device, playing(emergency), dut.limit("status_timeout_s"))
    expect(held, f"a lower-class bulletin cut off the emergency one: the device now plays {seen.get('source')!r} "
                 f"({how}: activity {seen.get('activity')!r})")


@requirement("PRIO-02")
def check_priority_ahead_of_normal(dut, device) -> None:  # noqa: ANN001
    duration = dut.target.media.short_audio_duration_s or 0
    limit = dut.limit("status_timeout_s")
    # The emergency bulletin is short: watch it start rather than wait for its ack first, or a
    # slow ack could outlast it.
    emergency, e_sent = dut.play(device, "emergency", short=True, wait=False)
    t_sent = time.monotonic()
    ok, seen, how = dut.wait_observed(device, playing(emergency), limit,
                                      give_up=lambda: dut.refused(e_sent.command_id, device))
    if not ok:
        e = dut.answer(e_sent.command_id, device, t_sent)
        expect(False, f"precondition: a short emergency bulletin could not be made to play (play {e.describe()}; "
                      f"{how}: activity {seen.get('activity')!r}, source {seen.get('source')!r}) — see PLAY-01")
    require_source(seen, how)
    t_started = time.monotonic()
    normal, a = dut.play(device, "normal", wait=False)
    prio, b = dut.play(device, "priority", wait=False)
    still, seen, how = dut.wait_observed(device, playing(emergency), 0)
    if not still:
        if time.monotonic() - t_started < duration / 2:  # it cannot have ended by itself yet
            _expect_not_cut_off(seen, how, normal, prio)
        raise RuntimeError(f"timing: the short emergency bulletin ({duration:g} s) ended before the normal and "
                           "priority bulletins were sent; give a longer media.short_audio_duration_s")
    by_hub = traits_of(dut.subject.manifest).priority == "hub"
    for label, ans in (("emergency", e_sent), ("normal", a), ("priority", b)):
        got = dut.answer(ans.command_id, device, time.monotonic())
        if by_hub and label != "emergency" and (got.held or got.state == "superseded"):
            # the device has no priority handling: the hub holds the waiting bulletins, and the
            # newer priority one supersedes the normal one waiting beside it
            dut.note(f"{label} play {got.state}: {got.reason}")
            continue
        dut.expect_acked(got, f"{label} play")
    wait = duration * dut.tolerance + limit
    ok, seen, how = dut.wait_observed(device, lambda s: not playing(emergency)(s), wait)
    expect(ok, f"precondition: the {duration:g} s emergency bulletin was still playing after {wait:g} s")
    if time.monotonic() - t_started < duration / 2:  # it did not end by itself: something replaced it
        _expect_not_cut_off(seen, how, normal, prio)
    if seen.get("activity") != "playing":  # a gap between two bulletins is allowed, a wrong order is not
        ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") == "playing", limit)
    which = "the normal bulletin" if is_source(seen.get("source"), normal) else repr(seen.get("source"))
    expect(playing(prio)(seen), f"when the emergency ended the device played {which}, not the priority bulletin "
                                f"that was waiting ({how}: activity {seen.get('activity')!r})")


def _expect_not_cut_off(seen, how: str, normal, prio) -> None:  # noqa: ANN001
    """A lower-class bulletin playing where the emergency one was is the device's fault (FAIL),
    not a timing problem of the run."""
    for label, content in (("normal", normal), ("priority", prio)):
        expect(not playing(content)(seen), f"a {label} bulletin cut off the emergency one: the device plays it "
                                            f"({how}: activity {seen.get('activity')!r})")


@requirement("PRIO-03")
def check_schedule_slot_plays_on_time(dut, device) -> None:  # noqa: ANN001
    lead = dut.param("schedule_lead_s")
    cid, content = dut.add_content()
    start = utcnow() + timedelta(seconds=lead)
    ans = dut.send("sync_schedule", device, {"slots": [{"content_id": cid, "start": start.isoformat(), "repeat": 1}]})
    dut.expect_acked(ans, "sync_schedule")
    early_window = max(0.0, (start - utcnow()).total_seconds() - 1.0)
    quiet, seen, how = dut.hold_observed(device, lambda s: not playing(content)(s), early_window)
    expect(quiet, f"the scheduled bulletin started before its time ({how})")
    limit = 1.0 + dut.limit("status_timeout_s")
    ok, seen, how = dut.wait_observed(device, playing(content), limit + max(0.0, (start - utcnow()).total_seconds()))
    expect(ok, f"the scheduled bulletin did not start within {limit:g} s of its time ({how}: activity "
               f"{seen.get('activity')!r}, source {seen.get('source')!r})")
