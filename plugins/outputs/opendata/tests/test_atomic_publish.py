"""A reader of the published folder never sees a half-written file."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from hub_output_opendata import publish
from hub_output_opendata.plugin import OpenDataOutput
from hub_output_opendata.testing import NOW


def test_a_reader_sees_the_old_file_or_the_new_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "day" / "2025-09-01.csv"
    versions = [(f"v{i};" * (2000 + 5000 * (i % 3))).encode() for i in range(6)]  # sizes differ
    publish.write_atomic(target, versions[0])
    seen: set[bytes] = set()
    torn: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = target.read_bytes()
            if data not in versions:
                torn.append(len(data))
            seen.add(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(300):
            publish.write_atomic(target, versions[n % len(versions)])
    finally:
        stop.set()
        reader.join(10)
    assert torn == []
    assert len(seen) > 1  # the reader did read while files were replaced
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left behind
    assert os.stat(target).st_mode & 0o777 == 0o644  # readable by the web server that serves it


def test_a_failed_write_leaves_the_published_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "month" / "2025-08.json"
    publish.write_atomic(target, b"[]\n")

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        publish.write_atomic(target, b"[{\"half\":")
    assert target.read_bytes() == b"[]\n"
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_an_unwritable_folder_is_a_transient_error(output: OpenDataOutput, published: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    from hub.output import OutputError
    with pytest.raises(OutputError, match="cannot write to .*No space left on device") as caught:
        output.run_periodic(NOW)
    assert caught.value.transient
    assert not (published / "datapackage.json").exists()
