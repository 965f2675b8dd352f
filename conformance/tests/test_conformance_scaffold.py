"""`hub plugin new`: the scaffolded plugin installs, loads through its entry point and runs
through the suite, failing honestly (fail or error per requirement, never a crash), without any
change to hub/. It is installed into this venv for the test and uninstalled afterwards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_conformance.results import RESULTS

BIN = Path(sys.executable).parent


def sh(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "HUB_PLUGINS"}
    full.update(env)
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd, env=full)


@pytest.fixture
def scaffolded(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    name = f"cfscaf_{uuid.uuid4().hex[:6]}"  # unique: other sessions share this venv
    got = sh([str(BIN / "hub"), "plugin", "new", name, "--dir", str(tmp_path), "--title", "Loa thử nghiệm"], tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    root = tmp_path / f"hub-vendor-{name.replace('_', '-')}"
    dist = root.name
    # No build isolation: offline, and setuptools is already in the venv.
    got = sh([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "-e", str(root)],
             tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    try:
        yield name, root
    finally:
        sh([sys.executable, "-m", "pip", "uninstall", "-y", "-q", dist], tmp_path)


def test_scaffold_refuses_bad_names_and_clobbering(tmp_path: Path) -> None:
    from hub_conformance import scaffold

    with pytest.raises(scaffold.ScaffoldError, match="lower case"):
        scaffold.create("Bad-Name", tmp_path)
    scaffold.create("okname", tmp_path, kinds=["led_board"])
    with pytest.raises(scaffold.ScaffoldError, match="not empty"):
        scaffold.create("okname", tmp_path)
    text = (tmp_path / "hub-vendor-okname" / "hub_okname" / "adapter.py").read_text(encoding="utf-8")
    assert 'device_kinds=("led_board",)' in text and "raise NotImplementedError" in text


def test_scaffolded_plugin_installs_loads_and_fails_honestly(scaffolded: tuple[str, Path], tmp_path: Path,
                                                             services: None) -> None:
    name, root = scaffolded
    pkg = f"hub_{name}"
    for f in ("pyproject.toml", "README.md", "target.example.yaml", f"{pkg}/adapter.py", f"{pkg}/simulator.py",
              f"{pkg}/plugin.py", f"{pkg}/quality_scale.yaml", f"tests/test_{name}_plugin.py",
              f"tests/test_{name}_conformance.py"):
        assert (root / f).is_file(), f
    # The hub loads it through its entry point, like any installed plugin.
    got = sh([str(BIN / "hub"), "plugins", "--json"], tmp_path, HUB_PLUGINS=name)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)[0]["vendors"][0]["name"] == name
    # Its own unit tests pass from the start.
    unit_tests = root / "tests" / f"test_{name}_plugin.py"
    got = sh([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(unit_tests)], root,
             PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert got.returncode == 0, got.stdout + got.stderr
    # Certification runs to the end and reports each unimplemented part as what it is.
    out = tmp_path / "report"
    got = sh([str(BIN / "hub-certify"), name, "--simulator", "--lenient", "--report-dir", str(out),
              "--ack-timeout", "1", "--status-timeout", "0.5", "--heartbeat-interval", "0.3"], tmp_path)
    assert got.returncode == 1, got.stdout + got.stderr
    assert f"{name} 0.1.0: FAIL" in got.stdout
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    results = {q["id"]: q for q in report["requirements"]}
    assert all(q["result"] in RESULTS and q["result"] != "not_run" for q in results.values())
    assert results["PLUG-01"]["result"] == "pass" and results["SEC-CRED-01"]["result"] == "pass"
    assert results["PARSE-01"]["result"] == "fail" and "not implemented" in results["PARSE-01"]["messages"][0]
    assert results["PLAY-01"]["result"] == "fail" and "NotImplementedError" in results["PLAY-01"]["messages"][0]
    assert results["ACK-02"]["result"] == "error" and "TODO: Adapter.send" in results["ACK-02"]["messages"][0]
    assert results["LINK-02"]["result"] == "error" and "cut_link" in results["LINK-02"]["messages"][0]
    assert results["RELAY-01"]["result"] == "not_applicable"  # not declared by the starter manifest
    tier = report["quality"]
    assert tier["reached"] is None and tier["quality_file"].endswith("quality_scale.yaml")
    assert "rule config-schema is todo" in tier["tiers"]["bronze"]["missing"]
    for f in ("report.html", "junit.xml"):
        assert (out / f).is_file()
