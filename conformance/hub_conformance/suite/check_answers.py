"""Acknowledgements and refusals: what the device says back, and what it refuses.

Refusals are provoked through the raw driver (a second adapter), since the hub itself never
sends an invalid, unknown, expired or unauthenticated command.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest

from hub.vendor_traits import traits_of
from hub_conformance import security
from hub_conformance.dut import CaptureSink, utcnow
from hub_conformance.results import NA_PREFIX
from hub_conformance.suite.common import (SKIP, benign, expect, expect_unchanged, level_matches, no_error, pick_level,
                                          requirement)


@requirement("ACK-01")
def check_device_confirms(dut, device) -> None:  # noqa: ANN001
    probe = benign(dut, device)
    if probe is None:
        pytest.skip(f"{SKIP}the device declares no command the suite can send harmlessly")
    verb, params, _key = probe
    ans = dut.send(verb, device, params)
    expect(ans.acked, f"{verb}: {ans.describe()}")
    dut.note(f"{verb} acknowledged after {ans.latency_s:.2f} s (limit {dut.limit('ack_timeout_s'):g} s)")


def _foreign_verb(device) -> tuple[str, dict, dict | None]:  # noqa: ANN001
    """A verb of the hub's vocabulary that a device of this kind cannot carry out."""
    if device.kind == "speaker":
        return "led_show", {"text": "Kiểm tra từ chối"}, None
    content = {"id": "conformance-refusal", "kind": "audio_file", "title": "Kiểm tra", "body": None,
               "language": "vi", "media_uri": "http://127.0.0.1:9/hub-conformance/refusal.mp3", "sha256": None,
               "duration_s": 5.0}
    return "play", {}, content


@requirement("ACK-02")
def check_refusal_carries_reason(dut, device) -> None:  # noqa: ANN001
    verb, params, content = _foreign_verb(device)
    ans = no_error(dut.raw_send(device, verb, params, content=content), verb)
    expect(ans.kind != "acked", f"{verb} sent to a {device.kind}: acknowledged as done")
    expect(ans.kind != "no_answer", f"{verb} sent to a {device.kind}: no answer within {ans.latency_s:.2f} s")
    expect(ans.rejected, f"{verb} sent to a {device.kind}: {ans.describe()}")
    expect(ans.reason and ans.reason.strip(), f"{verb} was refused without a reason")
    dut.note(f"refused: {ans.reason}")


@requirement("ACK-03")
def check_repeated_command_answered_once_done(dut, device) -> None:  # noqa: ANN001
    """Level A under id X, level B under a new id, then X again: answered again, and the device
    stays at B (carrying X out again would put it back to A)."""
    if traits_of(dut.subject.manifest).confirmation == "readback":
        pytest.skip(f"{NA_PREFIX}the devices take no command ids (confirmed by read-back), so the hub never "
                    "sends them a command again")
    probe = benign(dut, device)
    if probe is None or probe[2] is None:
        pytest.skip(f"{SKIP}the device declares no level whose repetition would show")
    verb, params, key = probe
    first = params["level"]
    again_id = f"conf-repeat-{uuid.uuid4().hex[:12]}"
    ans = no_error(dut.raw_send(device, verb, params, command_id=again_id), verb)
    if ans.synchronous:
        pytest.skip(f"{SKIP}the adapter answers in its send call, so the hub re-sends a command to this device "
                    "only when a worker died mid-send; the check covers devices that answer later")
    expect(ans.kind == "acked", f"{verb} {params}: {ans.describe()}")
    seen, _ = dut.observe(device)
    second = pick_level(dut, first, seen.get(key))
    ans = no_error(dut.raw_send(device, verb, {"level": second}), verb)
    expect(ans.kind == "acked", f"{verb} level {second}: {ans.describe()}")
    ok, seen, how = dut.wait_observed(device, lambda s: level_matches(dut, s.get(key), second),
                                      dut.limit("status_timeout_s"))
    expect(ok, f"{verb} level {second} was acknowledged, yet the device's {key} is {seen.get(key)} ({how})")
    ans = no_error(dut.raw_send(device, verb, params, command_id=again_id), f"{verb} repeated")
    expect(ans.kind != "no_answer", f"{verb} {again_id} sent again: no answer within {ans.latency_s:.2f} s; the "
                                    "hub re-sends an unanswered command and needs the answer again")
    expect(ans.kind == "acked", f"{verb} {again_id} sent again: {ans.describe()} (it was done the first time)")
    ok, seen, how = dut.hold_observed(device, lambda s: level_matches(dut, s.get(key), second),
                                      min(1.0, dut.limit("status_timeout_s")))
    expect(ok, f"{verb} {again_id} sent again was carried out again: the device's {key} went back from {second} "
               f"to {seen.get(key)} ({how})")
    dut.note(f"a repeated command id was answered again ({ans.latency_s:.2f} s) and not carried out twice")


@requirement("MAL-02")
def check_unknown_verb_refused(dut, device) -> None:  # noqa: ANN001
    ans = no_error(dut.raw_send(device, "conformance_unknown_verb", {"x": 1}), "unknown verb")
    expect(ans.kind != "acked", "an unknown verb was acknowledged as done")
    expect(ans.rejected, f"an unknown verb: {ans.describe()}")


@requirement("MAL-01")
def check_invalid_parameters_refused(dut, device) -> None:  # noqa: ANN001
    caps = device.capabilities
    if "audio.volume" in caps:
        verb, params, key = "set_volume", {"level": 150}, "volume"
    elif "led.brightness" in caps:
        verb, params, key = "set_brightness", {"level": 150}, "brightness"
    elif "power.switch" in caps:
        verb, params, key = "power", {"on": "perhaps"}, None
    else:
        pytest.skip(f"{SKIP}the device declares no command with parameters to corrupt")
    ans = no_error(dut.raw_send(device, verb, params), verb)
    expect(ans.kind != "acked", f"{verb} {params}: acknowledged as done")
    expect(ans.rejected, f"{verb} {params}: {ans.describe()}")
    seen, how = dut.observe(device)
    if key is not None and dut.witness is not None:
        expect(seen.get(key) != 150, f"{verb} {params} was refused, yet the device's {key} is 150 ({how})")


@requirement("TIME-03")
def check_expired_command_refused(dut, device) -> None:  # noqa: ANN001
    probe = benign(dut, device)
    if probe is None:
        pytest.skip(f"{SKIP}the device declares no command the suite can send harmlessly")
    verb, params, key = probe
    ans = no_error(dut.raw_send(device, verb, params, expires_at=utcnow() - timedelta(minutes=5)), verb)
    expect(ans.kind != "acked", f"{verb} that expired five minutes ago was acknowledged as done")
    expect(ans.rejected, f"{verb} that expired five minutes ago: {ans.describe()}")
    expect_unchanged(dut, device, key, params.get("level"), f"the expired {verb} was refused")


@requirement("SEC-AUTH-01")
def check_wrong_credentials_refused(dut, device) -> None:  # noqa: ANN001
    schema = dut.schema
    held = security.credentials_in(dut.config_raw, schema)
    if not held:
        names = ", ".join(security.secret_fields(schema)) or "none found in the config schema"
        pytest.skip(f"{SKIP}this run's configuration carries no credentials (credential settings: {names}), "
                    "so refusing wrong ones cannot be shown; certify a target whose configuration has them")
    probe = benign(dut, device)
    if probe is None:
        pytest.skip(f"{SKIP}the device declares no command the suite can send harmlessly")
    verb, params, key = probe
    wrong = security.wrong_credentials(dut.config_raw, schema, uuid.uuid4().hex[:8])
    adapter = dut.new_adapter(wrong)
    sink = CaptureSink()
    try:
        try:
            adapter.open()
        except Exception as exc:  # noqa: BLE001 - refused at the door is the good outcome
            dut.note(f"refused at connection: {type(exc).__name__}: {exc}")
            return
        adapter.watch([d.ref() for d in dut.devices])
        adapter.listen(sink)
        adapter.wait_ready(dut.limit("ack_timeout_s"))
        ans = dut.raw_send(device, verb, params, via=(adapter, sink))
    finally:
        try:
            adapter.close()
        except Exception:  # noqa: BLE001
            pass
    expect(ans.kind != "acked",
           f"{verb} sent with wrong credentials ({', '.join(held)}) was carried out and acknowledged")
    time.sleep(min(1.0, dut.limit("status_timeout_s")))  # let a device that acts without answering act
    expect_unchanged(dut, device, key, params.get("level"), f"{verb} with wrong credentials got {ans.kind}")
    dut.note(f"with wrong credentials: {ans.describe()}")
