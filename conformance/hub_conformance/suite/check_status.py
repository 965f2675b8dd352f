"""What devices report about themselves, and their clocks."""
from __future__ import annotations

import time
from datetime import timezone

import pytest

from hub.schemas.status import ACTIVITIES, NETWORKS

from hub_conformance.suite.common import benign, expect, level_matches, requirement

every_device = pytest.mark.every_device


def _first_report_timeout(dut) -> float:  # noqa: ANN001
    # A device that reports on change and on a heartbeat has reported by one of the two.
    return max(dut.limit("status_timeout_s"), dut.limit("heartbeat_interval_s"))


def _reported(dut, d):  # noqa: ANN001, ANN202
    timeout = _first_report_timeout(dut)
    ok, st = dut.wait_status(d, lambda s: s.get("reported_at") is not None, timeout)
    seen = "" if st is None else f" (the hub knows only: online={st.get('online')})"
    expect(ok, f"{d}: no status report within {timeout:g} s{seen}")
    return st


@requirement("STAT-01")
@every_device
def check_status_content(dut, devices) -> None:  # noqa: ANN001
    problems = []
    for d in devices:
        st = _reported(dut, d)
        missing = []
        if not st.get("online"):
            missing.append("online is false while the device is connected")
        if st.get("activity") not in ACTIVITIES or st.get("activity") == "unknown":
            missing.append(f"activity is {st.get('activity')!r}")
        for cap, key in (("audio.volume", "volume"), ("led.brightness", "brightness"), ("power.switch", "power")):
            if cap in d.capabilities and st.get(key) is None:
                missing.append(f"no {key} although the device declares {cap}")
        if missing:
            problems.append(f"{d}: " + "; ".join(missing))
    hint = (" (a device's capabilities come from the target file, else from the manifest narrowed by kind in "
            "hub/fleet/registry.py; list a device's real capabilities in the target if it lacks one)")
    expect(not problems, " | ".join(problems) + (hint if problems else ""))


@requirement("STAT-03")
@every_device
def check_status_reports_signal(dut, devices) -> None:  # noqa: ANN001
    problems = []
    for d in devices:
        st = _reported(dut, d)
        sig = st.get("signal") or {}
        if sig.get("network") not in NETWORKS or sig.get("network") == "unknown":
            problems.append(f"{d}: signal.network is {sig.get('network')!r}")
    expect(not problems, " | ".join(problems))


@requirement("STAT-04")
@every_device
def check_status_reports_faults(dut, devices) -> None:  # noqa: ANN001
    for d in devices:
        st = _reported(dut, d)
        faults = st.get("faults")
        expect(isinstance(faults, list) and all(isinstance(f, str) for f in faults),
               f"{d}: faults is {faults!r}, not a list of flags")
    dut.note("format only: the suite cannot make hardware fail, so no real fault flag was provoked")


@requirement("TIME-01")
@every_device
def check_status_carries_device_time(dut, devices) -> None:  # noqa: ANN001
    for d in devices:
        st = _reported(dut, d)
        at = st["reported_at"]
        expect(at.tzinfo is not None, f"{d}: the status timestamp has no UTC offset")
        # A clock that never synchronised reports 1970 or the firmware's build date.
        expect(at.year >= 2020, f"{d}: the status timestamp {at.isoformat()} shows an unset clock")


@requirement("TIME-02")
@every_device
def check_clock_skew(dut, devices) -> None:  # noqa: ANN001
    limit = dut.limit("max_clock_skew_s")
    timeout = _first_report_timeout(dut)
    problems = []
    for d in devices:
        before = (dut.status(d) or {}).get("reported_at")
        probe = benign(dut, d)
        if probe is not None:  # a change makes a device report now instead of at its next heartbeat
            dut.send(probe[0], d, probe[1], wait=False)
        ok, st = dut.wait_status(d, lambda s, b=before: s.get("reported_at") is not None and s["reported_at"] != b,
                                 timeout)
        if not ok:
            problems.append(f"{d}: no fresh status within {timeout:g} s to read the clock from")
            continue
        skew = abs((st["last_seen_at"] - st["reported_at"]).total_seconds())
        dut.note(f"{d.id}: device clock {skew:.3f} s from the hub's on arrival")
        if skew > limit:
            problems.append(f"{d}: clock {skew:.1f} s off the hub's (allowed {limit:g} s); "
                            f"device says {st['reported_at'].isoformat()}, received "
                            f"{st['last_seen_at'].astimezone(timezone.utc).isoformat()}")
    expect(not problems, " | ".join(problems))


@requirement("STAT-02")
def check_change_is_reported(dut, device) -> None:  # noqa: ANN001
    limit = dut.limit("status_timeout_s")
    caps = device.capabilities
    t0 = time.monotonic()
    if "audio.play_url" in caps:
        _content, ans = dut.play(device, "normal")
        want, key, label = "playing", "activity", "play"
    elif "led.text" in caps:
        ans = dut.send("led_show", device, {"text": "Kiểm tra trạng thái"})
        want, key, label = "showing", "activity", "led_show"
    else:
        probe = benign(dut, device)
        if probe is None or probe[2] is None:
            pytest.skip("not verified: the device has no command whose effect its status shows")
        ans = dut.send(probe[0], device, probe[1])
        want, key, label = probe[1]["level"], probe[2], probe[0]
    dut.expect_acked(ans, f"{label} (to change the state)")

    def shows(s: dict) -> bool:
        # A level is read back on the vendor's scale: within half a step is the level set (as VOL-02).
        return level_matches(dut, s.get(key), want) if key in ("volume", "brightness") else s.get(key) == want

    ok, st = dut.wait_status(device, shows, limit)
    got = None if st is None else st.get(key)
    expect(ok, f"after {label} was acknowledged the status still says {key}={got!r} after {limit:g} s")
    dut.note(f"status showed {key}={want!r} {time.monotonic() - t0:.2f} s after {label} was sent")
