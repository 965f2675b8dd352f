"""`hub outputs run` as a process of its own, and the health it records, read by `hub outputs list`
and GET /api/outputs (administrators only) from other processes."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub.access.actors import Actor
from hub.api import create_app
from hub.ports import free_port
from hub.runtime import Runtime
from hub.testing import scaled, wait_until
from tests.support.cli import hub as hub_cmd
from tests.support.cli import one_line_error
from tests.support.services import ROOT


def api(rt: Runtime, roles: set[str]):  # noqa: ANN201
    actor = Actor(name="nguoi-dung", roles=frozenset(roles), via="session")
    return create_app(rt, authenticator=lambda _req: actor).test_client()


@pytest.fixture
def outputs_config(config_file: Path, tmp_path: Path, rt: Runtime) -> Path:
    """The test's HUB_CONFIG with an outputs file: the prometheus output on a port of its own."""
    outputs = tmp_path / "outputs.yaml"
    outputs.write_text(yaml.safe_dump({"outputs": [
        {"name": "metrics", "plugin": "prometheus",
         "config": {"port": free_port(), "bearer_token": "${HUB_TEST_METRICS_TOKEN}"}},
        {"name": "spare", "plugin": "prometheus", "enabled": False}]}), encoding="utf-8")
    cfg = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    cfg.update(outputs_file=str(outputs), outputs_tick_s=0.2)
    config_file.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    rt.settings.outputs_file = str(outputs)
    return config_file


def test_hub_outputs_run_records_health_that_the_cli_and_the_api_show(
        outputs_config: Path, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    env_token = {"HUB_TEST_METRICS_TOKEN": "mot-token-du-dai-cho-prometheus"}
    monkeypatch.setenv("HUB_TEST_METRICS_TOKEN", env_token["HUB_TEST_METRICS_TOKEN"])
    r = hub_cmd(outputs_config, "outputs", "list", env=env_token)
    assert r.returncode == 0, r.stderr
    assert "no outputs runner has run" in r.stdout and "spare" in r.stdout and "disabled" in r.stdout
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "outputs", "run"], cwd=ROOT,
                            env={**__import__("os").environ, "HUB_CONFIG": str(outputs_config), **env_token},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        admin, operator = api(rt, {"administrator"}), api(rt, {"operator"})

        def ok() -> bool:
            rows = {o["name"]: o for o in admin.get("/api/outputs").get_json()["outputs"]}
            return bool(rows["metrics"]["status"] and rows["metrics"]["status"]["ok"])
        assert wait_until(ok, scaled(20), 0.2), admin.get("/api/outputs").get_json()
        body = admin.get("/api/outputs").get_json()
        assert body["runner"]["alive"] and body["error"] is None
        metrics = admin.get("/api/outputs/metrics").get_json()
        assert metrics["config"]["config"]["bearer_token"] == "${HUB_TEST_METRICS_TOKEN}"  # the variable, never the secret
        assert "mot-token" not in str(body) and "serving http://127.0.0.1:" in metrics["status"]["detail"]
        assert operator.get("/api/outputs").status_code == 403
        assert operator.get("/api/outputs/metrics").status_code == 403
        assert admin.get("/api/outputs/khong-co").status_code == 404
        r = hub_cmd(outputs_config, "outputs", "list", env=env_token)
        line = next(x for x in r.stdout.splitlines() if x.startswith("metrics "))
        assert " prometheus " in line and " ok " in line, r.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode(errors="replace")
    rows = {o["name"]: o for o in api(rt, {"administrator"}).get("/api/outputs").get_json()["outputs"]}
    assert rows["metrics"]["status"]["ok"] is False  # stopped, and said so


def test_hub_outputs_run_without_a_file_says_so(config_file: Path) -> None:
    assert one_line_error(hub_cmd(config_file, "outputs", "run")) == (
        "hub: error: outputs_file is not set: nothing to run (see docs/configuration.md)")
