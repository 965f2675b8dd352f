"""Heartbeats and link loss. Kept last (pytest runs modules in name order): cutting links and
waiting for heartbeats would otherwise disturb the checks that follow."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from hub_conformance.suite.common import SKIP, benign, expect, requirement


@requirement("HB-01")
@pytest.mark.every_device
def check_periodic_status(dut, devices) -> None:  # noqa: ANN001
    interval = dut.param("heartbeat_interval_s")
    allowed = interval * dut.tolerance + dut.heartbeat_slack
    for d in devices:  # nothing may play or change during the window: only heartbeats count
        dut.reset(d)
    time.sleep(0.5)
    window = 2.5 * allowed  # on time: at least two reports; late: one, or a gap over the limit
    times = dut.heard_times(devices, window)
    problems = []
    for d in devices:
        ts = times[d.id]
        if len(ts) < 2:
            problems.append(f"{d}: heard from {len(ts)} time(s) in {window:.1f} s of quiet, expected a status or "
                            f"presence report at least every {interval:g} s")
            continue
        gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:], strict=False)]
        dut.note(f"{d.id}: {len(ts)} reports, gaps {', '.join(f'{g:.2f}' for g in gaps)} s")
        if max(gaps) > allowed:
            problems.append(f"{d}: {max(gaps):.2f} s between two reports (allowed {allowed:.2f} s)")
    expect(not problems, " | ".join(problems))


def _require_link(dut) -> None:  # noqa: ANN001
    if dut.link is None:
        pytest.skip(f"{SKIP}needs link control to cut the device's link (a simulator's kill/revive, or "
                    "`link_control:` in the target file)")


def _offline_since(t_cut: datetime):  # noqa: ANN202
    return lambda s: (not s.get("online")) or (s.get("operating_state") == "offline"
                                               and s.get("state_since") is not None and s["state_since"] >= t_cut)


def _restore(dut, device) -> str | None:  # noqa: ANN001
    try:
        dut.link.restore(device.address)
    except Exception as exc:  # noqa: BLE001 - not coming back is a finding, not a suite error
        return f"{type(exc).__name__}: {exc}"
    return None


@requirement("LINK-01")
def check_link_loss_detected(dut, device) -> None:  # noqa: ANN001
    _require_link(dut)
    ok, st = dut.wait_status(device, lambda s: bool(s.get("online")), dut.limit("status_timeout_s"))
    expect(ok, f"precondition: the hub does not show {device} online before its link is cut")
    limit = dut.limit("offline_timeout_s")
    t_cut = datetime.now(timezone.utc)
    t0 = time.monotonic()
    dut.link.cut(device.address)
    try:
        ok, st = dut.wait_status(device, _offline_since(t_cut), limit)
        expect(ok, f"{limit:g} s after its link was cut the hub still shows {device} online "
                   f"(operating state {None if st is None else st.get('operating_state')!r})")
        dut.note(f"offline after {time.monotonic() - t0:.2f} s: {st.get('state_reason') or 'presence lost'}")
    finally:
        _restore(dut, device)


@requirement("LINK-02")
def check_recovery_after_link_loss(dut, device) -> None:  # noqa: ANN001
    _require_link(dut)
    t_cut = datetime.now(timezone.utc)
    dut.link.cut(device.address)
    dut.wait_status(device, _offline_since(t_cut), dut.limit("offline_timeout_s"))
    t0 = time.monotonic()
    problem = _restore(dut, device)
    expect(problem is None, f"the device did not reconnect: {problem}")
    limit = dut.limit("recovery_timeout_s")
    ok, st = dut.wait_status(device, lambda s: bool(s.get("online")) and s.get("operating_state") != "offline",
                             max(0.0, limit - (time.monotonic() - t0)))
    expect(ok, f"{limit:g} s after the link returned the hub does not show {device} online "
               f"(online={None if st is None else st.get('online')}, state "
               f"{None if st is None else st.get('operating_state')!r})")
    probe = benign(dut, device)
    if probe is None:
        return
    ans = dut.send(probe[0], device, probe[1])
    expect(ans.acked, f"back online, but {probe[0]} after the recovery: {ans.describe()}")
    dut.note(f"online and answering {time.monotonic() - t0:.2f} s after the link returned")
