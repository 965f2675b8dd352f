"""`hub speech`: an operator lists the voices and hears a bulletin as devices would get it."""
from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import yaml

from tests.support.cli import hub, one_line_error

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("ffmpeg")),
                                reason="espeak-ng and ffmpeg are needed (scripts/services.sh installs them)")


def _config(tmp_path: Path) -> Path:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path}/hub.sqlite3", "state_dir": str(tmp_path),
        "speech_dictionary": {"X.": "xã"},
        "plugins": {"gtts": {"service_url": f"http://127.0.0.1:{closed}/batchexecute", "timeout_s": 2}}},
        allow_unicode=True))
    return path


CHAIN = {"HUB_SPEECH_PROVIDERS": "gtts,espeak_ng"}  # the product's default chain (the suite speaks offline)


def test_voices_lists_each_provider_in_chain_order(tmp_path: Path) -> None:
    r = hub(_config(tmp_path), "speech", "voices", env=CHAIN)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("gtts (") and "#1 in speech_providers" in lines[0]
    espeak = lines.index(next(line for line in lines if line.startswith("espeak_ng (")))
    assert [line.split()[0] for line in lines[espeak + 1:espeak + 4]] == ["vi", "vi-vn-x-central", "vi-vn-x-south"]


def test_say_writes_the_mp3_and_tells_who_spoke_and_what_failed(tmp_path: Path) -> None:
    out = tmp_path / "thu.mp3"
    r = hub(_config(tmp_path), "speech", "say", "UBND X.Tân Phú: họp lúc 7h30.", "--out", str(out),
            "--voice", "vi-vn-x-south", env=CHAIN)
    assert r.returncode == 0, r.stderr
    assert "read as: Ủy ban nhân dân xã Tân Phú: họp lúc bảy giờ ba mươi phút." in r.stdout
    assert "spoken by espeak_ng (voice vi-vn-x-south)" in r.stdout and out.stat().st_size > 1000
    r = hub(_config(tmp_path), "speech", "say", "Xin chào.", "--out", str(out), "--provider", "gtts", env=CHAIN)
    assert "gtts: SpeechError: speech gtts: cannot reach the service" in one_line_error(r)
    r = hub(_config(tmp_path), "speech", "say", "Xin chào.", "--out", str(out), "--provider", "piper")
    assert one_line_error(r) == ("hub: error: no speech provider named 'piper' is installed "
                                 "(installed: espeak_ng, gtts)")
