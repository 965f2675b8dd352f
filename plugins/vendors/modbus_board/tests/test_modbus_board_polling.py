"""listen(): polling the units the adapter was told about, status on change, presence from
answers and a moving heartbeat."""
from __future__ import annotations

import time

from hub.vendor import Outcome

from modbus_board_helpers import VENDOR, RecordingSink, device, envelope, outgoing, wait_until


def test_watched_units_report_status_and_presence(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1, 2])
    adapter = make_adapter()
    adapter.watch([device(sim.address(1)), device(sim.address(2), kind="speaker")])
    adapter.listen(sink)
    assert adapter.wait_ready(1)
    a1, a2 = sim.address(1), sim.address(2)
    assert sink.wait(lambda: sink.statuses_for(a1) and sink.statuses_for(a2), 10)
    assert sink.presence_for(a1) == [True] and sink.vendors == {VENDOR}
    st = sink.statuses_for(a1)[0]
    assert st["online"] and st["volume"] == 52 and st["brightness"] == 80 and st["firmware"] == "1.4.2"
    assert st["activity"] == "idle" and st["faults"] == []
    # A change on the device is reported by the next poll; nothing is re-reported meanwhile.
    sim.set_alarms(1, amplifier_overheat=True)
    assert sink.wait(lambda: sink.statuses_for(a1)[-1]["faults"] == ["amplifier_overheat"], 10)
    count = len(sink.statuses_for(a1))
    time.sleep(1.0)
    assert len(sink.statuses_for(a1)) == count


def test_polling_survives_a_unit_that_stops_answering(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1, 2])
    adapter = make_adapter()
    adapter.watch([device(sim.address(u)) for u in (1, 2)])
    adapter.listen(sink)
    a1, a2 = sim.address(1), sim.address(2)
    assert sink.wait(lambda: sink.presence_for(a1) == [True] and sink.presence_for(a2) == [True], 10)
    sim.set_faults(1, unresponsive=True)
    assert sink.wait(lambda: sink.presence_for(a1) == [True, False], 15)
    # The other unit behind the same endpoint is still polled and still reports.
    sim.set_alarms(2, mains_lost=True)
    assert sink.wait(lambda: sink.statuses_for(a2)[-1]["faults"] == ["mains_lost"], 10)
    assert sink.presence_for(a2) == [True]
    sim.set_faults(1, unresponsive=False)
    assert sink.wait(lambda: sink.presence_for(a1) == [True, False, True], 10)
    assert sink.wait(lambda: len(sink.statuses_for(a1)) >= 2, 10)  # full status again on return


def test_whole_endpoint_down_then_back(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim, other = make_sim([1]), make_sim([1])
    adapter = make_adapter()
    adapter.watch([device(sim.address(1)), device(other.address(1))])
    adapter.listen(sink)
    assert sink.wait(lambda: sink.presence_for(sim.address(1)) == [True], 10)
    sim.stop()
    assert sink.wait(lambda: sink.presence_for(sim.address(1)) == [True, False], 15)
    before = adapter.poller.rounds
    assert wait_until(lambda: adapter.poller.rounds > before + 4, 10)  # the poller kept going
    sim.start()
    assert sink.wait(lambda: sink.presence_for(sim.address(1)) == [True, False, True], 15)
    assert sink.presence_for(other.address(1)) == [True]


def test_a_heartbeat_that_stops_means_offline(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1])
    adapter = make_adapter()
    adapter.watch([device(sim.address(1))])
    adapter.listen(sink)
    a1 = sim.address(1)
    assert sink.wait(lambda: sink.presence_for(a1) == [True], 10)
    sim.set_faults(1, no_heartbeat=True)  # Modbus still answers; the firmware is hung
    assert sink.wait(lambda: sink.presence_for(a1) == [True, False], 15)
    sim.set_faults(1, no_heartbeat=False)
    assert sink.wait(lambda: sink.presence_for(a1) == [True, False, True], 10)


def test_a_board_hung_from_the_start_never_shows_its_frozen_status(make_sim, make_adapter,
                                                                    sink: RecordingSink) -> None:
    sim = make_sim([1, 2])
    sim.set_faults(1, no_heartbeat=True)  # answers from the first poll, but its firmware is hung
    adapter = make_adapter()
    adapter.watch([device(sim.address(u)) for u in (1, 2)])
    adapter.listen(sink)
    a1, a2 = sim.address(1), sim.address(2)
    assert sink.wait(lambda: sink.presence_for(a1) == [False], 15)
    assert sink.statuses_for(a1) == []  # registers frozen at whatever they held are not a status
    # The healthy board beside it is online from its first heartbeat, without an offline first.
    assert sink.presence_for(a2) == [True] and sink.statuses_for(a2)
    sim.set_faults(1, no_heartbeat=False)
    assert sink.wait(lambda: sink.presence_for(a1) == [False, True] and sink.statuses_for(a1), 10)


def test_units_sent_to_are_polled_without_watch(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1, 2])
    adapter = make_adapter()
    adapter.listen(sink)
    [r] = adapter.send([outgoing(sim.address(2), envelope("set_brightness", {"level": 40}))])
    assert r.outcome is Outcome.ACKED
    assert sink.wait(lambda: any(s["brightness"] == 40 for s in sink.statuses_for(sim.address(2))), 10)
    assert sink.statuses_for(sim.address(1)) == []


def test_watch_replaces_the_list(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1, 2])
    adapter = make_adapter()
    adapter.watch([device(sim.address(1)), device("garbage")])  # a bad address is skipped, not fatal
    adapter.listen(sink)
    assert sink.wait(lambda: sink.statuses_for(sim.address(1)), 10)
    adapter.watch([device(sim.address(2))])
    assert sink.wait(lambda: sink.statuses_for(sim.address(2)), 10)
    time.sleep(0.5)
    sim.set_alarms(1, mains_lost=True)  # no longer watched: nobody hears of it
    sim.set_alarms(2, mains_lost=True)
    assert sink.wait(lambda: sink.statuses_for(sim.address(2))[-1]["faults"] == ["mains_lost"], 10)
    assert all(s["faults"] == [] for s in sink.statuses_for(sim.address(1)))


def test_a_faulty_sink_does_not_stop_polling(make_sim, make_adapter) -> None:
    sim = make_sim([1])

    class Exploding(RecordingSink):
        def status(self, vendor, address, status):  # noqa: ANN001, ANN201
            super().status(vendor, address, status)
            raise RuntimeError("database is on fire")

    sink = Exploding()
    adapter = make_adapter()
    adapter.watch([device(sim.address(1))])
    adapter.listen(sink)
    assert sink.wait(lambda: len(sink.statuses_for(sim.address(1))) == 1, 10)
    sim.set_alarms(1, speaker_line_open=True)
    assert sink.wait(lambda: len(sink.statuses_for(sim.address(1))) == 2, 10)


def test_close_is_prompt_even_while_an_endpoint_times_out(make_sim, make_adapter, sink: RecordingSink) -> None:
    sim = make_sim([1, 2, 3, 4])
    for unit in sim.units:
        sim.set_faults(unit, unresponsive=True)
    adapter = make_adapter(timeout_s=1.0)
    adapter.watch([device(sim.address(u)) for u in sim.units])
    adapter.listen(sink)
    time.sleep(0.3)  # a poll is now waiting on a unit that will never answer
    started = time.monotonic()
    adapter.close()
    assert time.monotonic() - started < 5  # at most the one request in flight
