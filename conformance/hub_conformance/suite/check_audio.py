"""Loudspeaker functions: play, stop, volume, relay, power. Each command must be acknowledged
and then seen to take effect — by the witness when there is one, else in the device's status."""
from __future__ import annotations

import pytest

from hub_conformance.suite.common import (SKIP, expect, is_source, level_matches, pick_level,
                                          require_witness, requirement)


@requirement("PLAY-01")
def check_play(dut, device) -> None:  # noqa: ANN001
    content, ans = dut.play(device, "normal")
    dut.expect_acked(ans, "play")
    ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") == "playing", dut.limit("status_timeout_s"))
    expect(ok, f"play was acknowledged but the device does not play ({how}: activity {seen.get('activity')!r})")
    if seen.get("source") is not None:
        expect(is_source(seen["source"], content), f"the device plays {seen['source']!r}, not the bulletin sent")
    dut.note(f"acknowledged after {ans.latency_s:.2f} s; seen by {how}")


@requirement("STOP-01")
def check_stop(dut, device) -> None:  # noqa: ANN001
    # Stop must end whatever the device plays: a bulletin when it can be sent one, else a
    # relayed stream (a Snapcast client plays only streams).
    caps = device.capabilities
    if "audio.play_url" in caps:
        what = "a bulletin"
        _content, ans = dut.play(device, "normal")
        busy = "playing"
    elif "audio.stream_relay" in caps and dut.target.media.stream_url:
        what = "a relayed stream"
        ans = dut.send("relay_start", device, {"url": dut.target.media.stream_url})
        busy = "relaying"
    else:
        pytest.skip(f"{SKIP}the device can be made neither to play a bulletin (audio.play_url) nor to relay "
                    "a stream (audio.stream_relay with media.stream_url), so there is nothing to stop")
    ok, seen, how = False, {}, "not observed"
    if ans.acked:
        ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") == busy,
                                          dut.limit("status_timeout_s"))
    expect(ans.acked and ok, f"precondition: the device could not be made to play {what} ({ans.describe()}; "
                             f"{how}: activity {seen.get('activity')!r}) — see PLAY-01 / RELAY-01")
    ans = dut.send("stop", device)
    dut.expect_acked(ans, "stop")
    ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") not in ("playing", "relaying"),
                                      dut.limit("status_timeout_s"))
    expect(ok, f"stop was acknowledged but the device still plays {what} ({how}: activity {seen.get('activity')!r})")
    dut.note(f"stopped {what}")


@requirement("VOL-01")
def check_volume_is_carried_out(dut, device) -> None:  # noqa: ANN001
    require_witness(dut, "to see the device's actual volume; VOL-02 checks what it reports")
    seen, _ = dut.observe(device)
    level = pick_level(dut, seen.get("volume"))
    ans = dut.send("set_volume", device, {"level": level})
    dut.expect_acked(ans, f"set_volume {level}")
    ok, seen, how = dut.wait_observed(device, lambda s: level_matches(dut, s.get("volume"), level),
                                      dut.limit("status_timeout_s"))
    expect(ok, f"volume set to {level}, but the device's volume is {seen.get('volume')!r} ({how})")


@requirement("VOL-02")
def check_volume_read_back(dut, device) -> None:  # noqa: ANN001
    seen, _ = dut.observe(device)
    level = pick_level(dut, seen.get("volume"), (dut.status(device) or {}).get("volume"))
    ans = dut.send("set_volume", device, {"level": level})
    dut.expect_acked(ans, f"set_volume {level}")
    problems = []
    readback = (ans.result or {}).get("volume")
    if readback is not None and not level_matches(dut, readback, level):
        problems.append(f"the acknowledgement reads back {readback}")
    ok, st = dut.wait_status(device, lambda s: level_matches(dut, s.get("volume"), level),
                             dut.limit("status_timeout_s"))
    if not ok:
        problems.append(f"the status reports {None if st is None else st.get('volume')!r}")
    step = dut.param("level_step")
    expect(not problems, f"volume set to {level}: " + "; ".join(problems)
           + (f" (more than half a step of {step:g} off)" if step > 1 else ""))
    where = "acknowledgement and status" if readback is not None else "status"
    dut.note(f"read back {st.get('volume')} for {level} in the {where}")


@requirement("RELAY-01")
def check_relay(dut, device) -> None:  # noqa: ANN001
    url = dut.target.media.stream_url
    if not url:
        pytest.skip(f"{SKIP}the target gives no media.stream_url")
    ans = dut.send("relay_start", device, {"url": url})
    dut.expect_acked(ans, "relay_start")
    ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") == "relaying", dut.limit("status_timeout_s"))
    expect(ok, f"relay_start was acknowledged but the device does not relay ({how}: activity "
               f"{seen.get('activity')!r})")
    ans = dut.send("relay_stop", device)
    dut.expect_acked(ans, "relay_stop")
    ok, seen, how = dut.wait_observed(device, lambda s: s.get("activity") != "relaying", dut.limit("status_timeout_s"))
    expect(ok, f"relay_stop was acknowledged but the device still relays ({how})")


@requirement("POWER-01")
def check_power(dut, device) -> None:  # noqa: ANN001
    limit = dut.limit("status_timeout_s")

    def is_off(s: dict) -> bool:
        return s.get("power") is False or (s.get("power") is None and s.get("activity") == "off")

    try:
        ans = dut.send("power", device, {"on": False})
        dut.expect_acked(ans, "power off")
        ok, seen, how = dut.wait_observed(device, is_off, limit)
        expect(ok, f"power off was acknowledged but the device is not off ({how}: power {seen.get('power')!r})")
        ans = dut.send("power", device, {"on": True})
        dut.expect_acked(ans, "power on")
        ok, seen, how = dut.wait_observed(device, lambda s: not is_off(s), limit)
        expect(ok, f"power on was acknowledged but the device stays off ({how})")
    finally:
        dut.send("power", device, {"on": True}, wait=False)
