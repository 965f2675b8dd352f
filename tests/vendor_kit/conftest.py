"""The batch gateway test plugin (tests/vendor_kit/batch_gateway), written from the guide as an
outside vendor would. Certification loads it the way the hub loads any third-party plugin — its
entry point — so it is pip-installed into the venv for the module that certifies it (and removed
after, when that module installed it); in-process tests import it from its folder."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DIST = "hub-vendor-batch-gateway"
ROOT = Path(__file__).resolve().parent / "batch_gateway"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")  # removed again before other modules run `hub plugins`
def batch_gateway_installed() -> Iterator[str]:
    try:
        md.distribution(DIST)
        installed_here = False
    except md.PackageNotFoundError:
        # No build isolation: offline, and setuptools is already in the venv.
        got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                              "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
        assert got.returncode == 0, got.stdout + got.stderr
        installed_here = True
    try:
        yield "batch_gateway"
    finally:
        if installed_here:
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", DIST], capture_output=True,
                           timeout=300)
