"""Running the suite: one pytest process per certification run.

A separate process keeps each run clean — the hub's process-wide runtime and plugin set, paho's
threads, logging — and lets the proof tests run several runs side by side.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hub_conformance import reports

SETUP_ERROR = 2  # the suite could not run at all (unknown plugin, bad target file)


@dataclass
class RunResult:
    exit_code: int
    report_dir: Path
    report: dict[str, Any] | None
    output: str

    @property
    def ok(self) -> bool:
        return self.report is not None


def suite_dir() -> Path:
    return Path(str(resources.files("hub_conformance").joinpath("suite")))


def pytest_argv(plugin: str, *, report_dir: Path, simulator: bool = False, target: str | Path | None = None,
                mode: str = "strict", params: Mapping[str, float] | None = None, faults: Iterable[str] = (),
                run_id: str | None = None, select: str | None = None, extra: Iterable[str] = ()) -> list[str]:
    suite = suite_dir()
    # Third-party pytest plugins are not auto-loaded (see run()); the one the suite relies on is
    # named here.
    plugins = ["-p", "pytest_timeout"] if importlib.util.find_spec("pytest_timeout") else []
    argv = [sys.executable, "-m", "pytest", "-c", str(suite / "conformance.ini"), "--rootdir", str(suite),
            *plugins, "-p", "hub_conformance.pytest_plugin", str(suite), "-q", "--tb=line", "-rN",
            "--junitxml", str(report_dir / reports.JUNIT_NAME), "-o", "junit_family=xunit2",
            "-o", "junit_suite_name=hub-conformance",
            "--hub-plugin", plugin, "--hub-mode", mode, "--hub-report-dir", str(report_dir),
            "--hub-run-id", run_id or uuid.uuid4().hex[:10]]
    if simulator:
        argv.append("--hub-simulator")
    if target:
        argv += ["--hub-target", str(target)]
    for name, value in (params or {}).items():
        argv += ["--hub-param", f"{name}={value}"]
    for f in faults:
        argv += ["--hub-fault", f]
    if select:
        argv += ["-k", select]
    return argv + list(extra)


def run(plugin: str, *, report_dir: Path, simulator: bool = False, target: str | Path | None = None,
        mode: str = "strict", params: Mapping[str, float] | None = None, faults: Iterable[str] = (),
        run_id: str | None = None, select: str | None = None, extra: Iterable[str] = (),
        echo: bool = False, timeout: float | None = None, env: Mapping[str, str] | None = None) -> RunResult:
    """Run the suite and return its JSON report (None when it could not run)."""
    # The suite runs with the report folder as its working directory: every path must be absolute.
    report_dir = Path(report_dir).resolve()
    target = Path(target).resolve() if target else None
    report_dir.mkdir(parents=True, exist_ok=True)
    stale = report_dir / reports.JSON_NAME
    if stale.exists():
        stale.unlink()  # a report left by an earlier run must never be mistaken for this one's
    argv = pytest_argv(plugin, report_dir=report_dir, simulator=simulator, target=target, mode=mode, params=params,
                       faults=faults, run_id=run_id, select=select, extra=extra)
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("PYTHONUNBUFFERED", "1")
    # A certification must not depend on whatever pytest plugins happen to be installed (they
    # could change results, and some cost seconds to import).
    run_env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    log_path = report_dir / "pytest-output.txt"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=run_env,
                                cwd=str(report_dir))
        assert proc.stdout is not None
        chunks = []
        try:
            for line in proc.stdout:
                chunks.append(line)
                log.write(line)
                if echo:
                    sys.stdout.write(line)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            chunks.append(f"\nhub-conformance: the suite run exceeded {timeout:g} s and was stopped\n")
    report = reports.read_json(report_dir) if (report_dir / reports.JSON_NAME).exists() else None
    return RunResult(proc.returncode, report_dir, report, "".join(chunks))


def usage_error(output: str) -> str:
    """The one line pytest printed about why the run could not start."""
    for line in output.splitlines():
        if line.startswith("ERROR: "):
            return line[len("ERROR: "):]
    tail = [ln for ln in output.strip().splitlines() if ln.strip()]
    return tail[-1] if tail else "the suite did not run (no output)"
