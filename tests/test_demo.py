"""`make demo`'s main job on the embedded default: no Redis or broker of the machine's is used."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_the_demo_sends_the_bulletin_on_the_embedded_default(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hub.cli", "demo", "--embedded", "--no-serve", "--speakers", "30",
                        "--boards", "1"], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if not k.startswith("HUB_")})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "jobs: fakeredis" in r.stdout and "MQTT: embedded" in r.stdout
    assert "32 deliveries" in r.stdout and "acked 31, unsupported 1" in r.stdout
    assert r.stdout.count("TN-SPK-") == 30
    # its accounts: generated for the run, each password printed once, none of them a constant
    found = dict(re.findall(r"^\s+(demo-admin|demo-operator)\s.*password (\S+)$", r.stdout, re.M))
    assert set(found) == {"demo-admin", "demo-operator"}, r.stdout[:3000]
    for password in found.values():
        assert len(password) >= 20 and r.stdout.count(password) == 1
        assert password not in (Path(__file__).parents[1] / "hub" / "devkit" / "demo.py").read_text()
