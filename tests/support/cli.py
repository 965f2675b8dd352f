"""The real `hub` command in a subprocess, and what its errors must look like."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.services import ROOT


def hub(config: Path, *args: str, env: dict | None = None,
        input_text: str | None = None) -> subprocess.CompletedProcess:
    """`hub ARGS` with HUB_CONFIG=config (and `env` added), text in and out."""
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          input=input_text, env={**os.environ, "HUB_CONFIG": str(config), **(env or {})}, cwd=ROOT)


def hub_cli(config: Path, *args: str | bytes, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real `hub` command in a subprocess; bytes arguments reach it as they are (not UTF-8)."""
    r = subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "HUB_CONFIG": str(config)}, input=stdin.encode() if stdin else None)
    r.stdout = r.stdout.decode("utf-8", "backslashreplace")
    r.stderr = r.stderr.decode("utf-8", "backslashreplace")
    return r


def one_line_error(r: subprocess.CompletedProcess) -> str:
    """The command failed with one line, `hub: error: …`; returns it."""
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: error: "), r.stderr
    return lines[0]
