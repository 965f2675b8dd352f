"""The batch gateway test plugin (tests/vendor_kit/batch_gateway), written from the guide as an
outside vendor would. Certification loads it the way the hub loads any third-party plugin — its
entry point — so it is pip-installed, into a folder of the certifying module's own, for that module;
in-process tests import it from its folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent / "batch_gateway"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="module")
def batch_gateway_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Installed into a folder of this module's own, put on this process's path and its children's
    PYTHONPATH: never into the shared venv, where other tests running at the same time would find a
    half-installed or half-removed entry point (`hub` then warns that a plugin failed to import)."""
    # Always installed afresh: an *.egg-info left in its folder (which is on sys.path, below) would
    # make it look installed to this process and not to the `hub-certify` it starts.
    target = tmp_path_factory.mktemp("batch_gateway_site")
    # Built from a copy: a build writes build/ and *.egg-info beside the sources it is given.
    source = tmp_path_factory.mktemp("batch_gateway_src") / "batch_gateway"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    # No build isolation: offline, and setuptools is already in the venv.
    got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
                          "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr
    before = os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), before) if p)
    try:
        yield "batch_gateway"
    finally:
        sys.path.remove(str(target))
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
