"""The adapter against simulated controllers: writes confirmed by the ack register and read-back,
failures classified the way the hub's retry policy needs."""
from __future__ import annotations

import time
import unicodedata

import pytest

from hub.vendor import Outcome, Result, TransientError

from hub_modbus_board.board import UnitSpec
from modbus_board_helpers import (VIETNAMESE, VIETNAMESE_ASCII, device, envelope, free_port, outgoing)


def by_id(results: list[Result]) -> dict[str, Result]:
    return {r.device_id: r for r in results}


def dev_id(address: str) -> str:
    return f"dev-{address}"


def test_vietnamese_arrives_byte_identical_in_nfc(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    decomposed = unicodedata.normalize("NFD", VIETNAMESE)  # what some keyboards produce
    [r] = adapter.send([outgoing(sim.address(1), envelope("led_show", {"text": decomposed, "effect": "blink"}))])
    assert r.outcome is Outcome.ACKED, r
    assert sim.unit(1).text_bytes == VIETNAMESE.encode("utf-8")
    assert sim.unit(1).effect == "blink"
    assert r.detail["text"] == VIETNAMESE and r.detail["bytes"] == len(VIETNAMESE.encode()) and r.detail["unicode"]


def test_board_configured_ascii_receives_the_transliteration(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2, UnitSpec(3, unicode=False)])
    adapter = make_adapter()
    env = envelope("led_show", {"text": VIETNAMESE})
    results = by_id(adapter.send([
        outgoing(sim.address(1), env, unicode=False),  # the registry says so
        outgoing(sim.address(2), env),
        outgoing(sim.address(3), env),  # the board's flag says so, the registry did not know
    ]))
    assert all(r.outcome is Outcome.ACKED for r in results.values()), results
    assert sim.unit(1).text == VIETNAMESE_ASCII and sim.unit(3).text == VIETNAMESE_ASCII
    assert sim.unit(2).text == VIETNAMESE
    assert results[dev_id(sim.address(1))].detail["transliterated"] is True
    assert "cannot show Unicode" in results[dev_id(sim.address(3))].detail["note"]


def test_every_verb_is_acked_with_its_read_back(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2, 3, 4])
    adapter = make_adapter()
    results = by_id(adapter.send([
        outgoing(sim.address(1), envelope("set_volume", {"level": 60})),
        outgoing(sim.address(2), envelope("set_brightness", {"level": 35})),
        outgoing(sim.address(3), envelope("power", {"on": False})),
        outgoing(sim.address(4), envelope("led_show", {"text": "Họp"})),
    ]))
    assert all(r.outcome is Outcome.ACKED for r in results.values()), results
    assert results[dev_id(sim.address(1))].detail == {"volume": 61, "volume_device": 19, "sequence": 1}
    assert sim.unit(1).volume == 19  # 60 % of 0-31
    assert results[dev_id(sim.address(2))].detail["brightness"] == 35 and sim.unit(2).brightness == 35
    assert results[dev_id(sim.address(3))].detail["power"] is False and sim.unit(3).power is False
    [cleared] = adapter.send([outgoing(sim.address(4), envelope("led_clear"))])
    assert cleared.outcome is Outcome.ACKED and sim.unit(4).text == ""


def test_one_connection_per_endpoint_is_reused(make_sim, make_adapter) -> None:
    a, b = make_sim([1, 2, 3]), make_sim([1])
    adapter = make_adapter()
    for _ in range(3):
        env = envelope("set_brightness", {"level": 50})
        results = adapter.send([outgoing(a.address(u), env) for u in (1, 2, 3)] + [outgoing(b.address(1), env)])
        assert {r.outcome for r in results} == {Outcome.ACKED}
    assert a.connections == 1 and b.connections == 1


def test_a_connection_the_controller_dropped_is_replaced_quietly(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    assert adapter.send([outgoing(sim.address(1), envelope("power", {"on": True}))])[0].outcome is Outcome.ACKED
    sim.stop()  # closes every connection, like an idle timeout on the controller
    sim.start()
    [r] = adapter.send([outgoing(sim.address(1), envelope("power", {"on": False}))])
    assert r.outcome is Outcome.ACKED, r
    assert sim.connections == 2


def test_text_longer_than_the_slot_fails_and_nothing_is_written(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    [r] = adapter.send([outgoing(sim.address(1), envelope("led_show", {"text": "Bão số 3 " * 30}))])
    assert r.outcome is Outcome.FAILED and not r.transient
    assert "360 bytes" in r.reason and "256" in r.reason
    assert sim.unit(1).commits == 0
    # Known before any request: an unreachable board does not turn it into a retried timeout.
    sim.set_faults(1, unresponsive=True)
    [r] = adapter.send([outgoing(sim.address(1), envelope("led_show", {"text": "Bão số 3 " * 30}))])
    assert r.outcome is Outcome.FAILED and not r.transient and "360 bytes" in r.reason


def test_device_misbehaviour_is_caught_by_the_read_back(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2, 3])
    sim.set_faults(1, wrong_volume=True)
    sim.set_faults(2, mangle_text=True)
    sim.set_faults(3, ack_without_acting=True)
    adapter = make_adapter()
    results = by_id(adapter.send([
        outgoing(sim.address(1), envelope("set_volume", {"level": 60})),
        outgoing(sim.address(2), envelope("led_show", {"text": VIETNAMESE})),
        outgoing(sim.address(3), envelope("set_brightness", {"level": 10})),
    ]))
    wrong, mangled, lazy = (results[dev_id(sim.address(u))] for u in (1, 2, 3))
    assert wrong.outcome is Outcome.FAILED and not wrong.transient
    assert "read-back volume 24/31" in wrong.reason and wrong.detail["volume"] == 77
    assert mangled.outcome is Outcome.FAILED and "Thong bao khan" in mangled.reason
    assert mangled.detail["text"] == VIETNAMESE_ASCII
    assert lazy.outcome is Outcome.FAILED and "brightness 80 differs from the 10 written" in lazy.reason
    assert "acknowledged sequence" in lazy.reason


def test_modbus_exception_fails_for_good_naming_the_code(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2])
    sim.set_faults(1, exception_on_write=True)
    adapter = make_adapter()
    results = by_id(adapter.send([outgoing(sim.address(u), envelope("set_brightness", {"level": 10}))
                                  for u in (1, 2)]))
    bad = results[dev_id(sim.address(1))]
    assert bad.outcome is Outcome.FAILED and not bad.transient
    assert "Modbus exception 4 (server device failure)" in bad.reason and sim.address(1) in bad.reason
    assert results[dev_id(sim.address(2))].outcome is Outcome.ACKED


def test_unit_missing_behind_a_gateway_is_transient(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    [r] = adapter.send([outgoing(f"{sim.endpoint}/9", envelope("power", {"on": True}))])
    assert r.outcome is Outcome.FAILED and r.transient and "Modbus exception 11" in r.reason


def test_refused_endpoint_fails_its_units_transiently_and_not_the_others(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    dead = f"127.0.0.1:{free_port()}"
    adapter = make_adapter()
    env = envelope("power", {"on": True})
    results = by_id(adapter.send([outgoing(f"{dead}/1", env), outgoing(f"{dead}/2", env),
                                  outgoing(sim.address(1), env)]))
    for unit in (1, 2):
        r = results[dev_id(f"{dead}/{unit}")]
        assert r.outcome is Outcome.FAILED and r.transient
        assert dead in r.reason and "connection refused" in r.reason
    assert results[dev_id(sim.address(1))].outcome is Outcome.ACKED


def test_unresponsive_unit_times_out_and_its_neighbour_is_still_served(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2])
    sim.set_faults(1, unresponsive=True)
    adapter = make_adapter(timeout_s=0.5)
    env = envelope("set_volume", {"level": 30})
    started = time.monotonic()
    results = by_id(adapter.send([outgoing(sim.address(1), env), outgoing(sim.address(2), env)]))
    slow = results[dev_id(sim.address(1))]
    assert slow.outcome is Outcome.FAILED and slow.transient
    assert sim.address(1) in slow.reason and "timeout" in slow.reason
    assert results[dev_id(sim.address(2))].outcome is Outcome.ACKED
    assert time.monotonic() - started < 10  # one timeout, not one per request


def test_silent_unit_may_have_acted_but_is_reported_as_a_timeout(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    sim.set_faults(1, silent=True)
    [r] = make_adapter(timeout_s=0.3).send([outgoing(sim.address(1), envelope("set_brightness", {"level": 5}))])
    assert r.outcome is Outcome.FAILED and r.transient and "timeout" in r.reason


def test_a_dead_gateway_costs_a_few_timeouts_not_one_per_unit(make_sim, make_adapter) -> None:
    sim = make_sim([1, 2, 3, 4, 5, 6])
    for unit in sim.units:
        sim.set_faults(unit, unresponsive=True)
    adapter = make_adapter(timeout_s=0.3, max_timeouts_per_endpoint=2)
    env = envelope("power", {"on": True})
    started = time.monotonic()
    results = adapter.send([outgoing(sim.address(u), env) for u in sim.units])
    assert time.monotonic() - started < 6  # about 2 × 0.3 s, with room for a busy machine
    assert all(r.outcome is Outcome.FAILED and r.transient for r in results)
    assert sum("not tried" in r.reason for r in results) == 4


def test_bad_address_and_unsupported_verb_fail_for_good(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    results = by_id(adapter.send([outgoing("not-an-address", envelope("power", {"on": True})),
                                  outgoing(sim.address(1), envelope("play", {"repeat": 1}))]))
    assert results[dev_id("not-an-address")].outcome is Outcome.FAILED
    assert "host:port/unit" in results[dev_id("not-an-address")].reason
    assert "not supported" in results[dev_id(sim.address(1))].reason
    assert not any(r.transient for r in results.values())


def test_expired_envelope_is_not_written(make_sim, make_adapter) -> None:
    sim = make_sim([1])
    [r] = make_adapter().send([outgoing(sim.address(1), envelope("power", {"on": False}, expires_in_s=-1))])
    assert r.outcome is Outcome.FAILED and "expired" in r.reason and sim.unit(1).power is True


def test_probe_capabilities_reads_the_unicode_flag(make_sim, make_adapter) -> None:
    sim = make_sim([1, UnitSpec(2, unicode=False)])
    adapter = make_adapter()
    assert "led.text_unicode" in adapter.probe_capabilities(device(sim.address(1)))
    caps = adapter.probe_capabilities(device(sim.address(2)))
    assert "led.text_unicode" not in caps and "led.text" in caps


def test_send_after_close_is_transient(make_adapter) -> None:
    adapter = make_adapter()
    adapter.close()
    with pytest.raises(TransientError, match="closed"):
        adapter.send([outgoing("127.0.0.1:1/1", envelope("power", {"on": True}))])
