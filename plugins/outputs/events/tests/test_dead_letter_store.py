"""The dead-letter file: bounded, oldest dropped first, readable by another process."""
from __future__ import annotations

from pathlib import Path

from hub_output_events.envelope import Envelope
from hub_output_events.storage import DeadLetterStore


def _envelope(n: int) -> Envelope:
    return Envelope(id=f"id-{n}", sequence=n, type="device.offline", emitted_at="2024-12-06T04:55:00+00:00",
                    event={"type": "device.offline", "device_id": f"spk-{n}"})


def test_the_store_keeps_the_newest_and_counts_what_it_dropped(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path, max_records=10)
    for n in range(1, 26):
        store.add("ioc", _envelope(n), 3, "HTTP 503")
    kept = [r["envelope"]["sequence"] for r in store.list()]
    assert len(kept) <= 10 and kept == sorted(kept) and kept[-1] == 25
    assert store.dropped == 25 - len(kept)
    assert store.count() == {"ioc": len(kept)}


def test_another_process_sees_the_same_records_and_a_cut_line_does_not_hide_the_rest(tmp_path: Path) -> None:
    writer = DeadLetterStore(tmp_path)
    writer.add("ioc", _envelope(1), 10, "HTTP 500")
    with open(writer.path, "a", encoding="utf-8") as fh:
        fh.write('{"dead_id": "cut sh')  # a crash in the middle of a line
        fh.write("\n")
    writer.add("backup", _envelope(2), 10, "ConnectionRefusedError")
    reader = DeadLetterStore(tmp_path)
    assert [r["destination"] for r in reader.list()] == ["ioc", "backup"]
    assert reader.count() == {"ioc": 1, "backup": 1}
    assert [r["envelope"]["id"] for r in reader.take(destination="backup")] == ["id-2"]
    assert writer.count() == {"ioc": 1}
