"""One typed configuration: every setting shown and documented, wrong values refused in one line
naming the file (or variable), the key and the expected type, the environment over the file,
secrets never printed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.cli.config import render_docs
from hub.config import SETTINGS, ConfigError, Settings, load_settings
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "configuration.md"


def hub(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m hub.cli …` with no HUB_* variable but those given (the caller's must not leak in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    if config is not None:
        base["HUB_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**base, "HUB_PLUGINS": "", **(env or {})}, cwd=ROOT)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("hub: error: "), (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0].removeprefix("hub: error: ")


def test_every_setting_is_shown_and_documented() -> None:
    r = hub("config", "show")
    assert r.returncode == 0, r.stderr
    shown = {line.split()[0] for line in r.stdout.splitlines() if line and not line.startswith("#")}
    docs = DOCS.read_text(encoding="utf-8")
    for d in SETTINGS:
        assert d.key in shown, f"{d.key} missing from `hub config show`"
        assert f"| `{d.key}` |" in docs, f"{d.key} missing from {DOCS}"
        if d.env:
            assert f"`{d.env}`" in docs
    assert len(SETTINGS) == len({d.key for d in SETTINGS}) >= 40
    assert all(d.help and d.kind.noun for d in SETTINGS)


def test_the_checked_in_reference_matches_the_declarations() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_docs(), "run `hub config docs`"


def test_a_stale_reference_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "configuration.md"
    assert hub("config", "docs", "--file", str(path)).returncode == 0
    assert hub("config", "docs", "--check", "--file", str(path)).returncode == 0
    path.write_text(path.read_text(encoding="utf-8").replace("`requeue_after_s`", "`requeue_s`"), encoding="utf-8")
    assert one_line_error(hub("config", "docs", "--check", "--file", str(path))) == (
        f"{path} is out of date (run `hub config docs`)")


@pytest.mark.parametrize("line, expected", [
    ("requeue_after_s: abc", "requeue_after_s: expected a number of seconds, got 'abc'"),
    ("batch_size: 2.5", "batch_size: expected a whole number, got 2.5"),
    ("cookie_secure: perhaps", "cookie_secure: expected true or false, got 'perhaps'"),
    ("device_networks: 10.80.0.0/16", "device_networks: expected a list of text (comma-separated in the "
                                      "environment), got '10.80.0.0/16'"),
    ("retry_backoff_s: [0.5, soon]", "retry_backoff_s: expected a list of numbers of seconds (comma-separated in "
                                     "the environment), got [0.5, 'soon']"),
    ("queue: [a, b]", "queue: expected text, got ['a', 'b']"),
    ("plugins: [mqtt_speaker]", "plugins: expected a mapping of plugin name to that plugin's settings, "
                                "got ['mqtt_speaker']"),
])
def test_a_wrong_type_in_the_file_is_one_line_naming_file_key_and_type(tmp_path: Path, line: str,
                                                                      expected: str) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(line + "\n", encoding="utf-8")
    assert one_line_error(hub("config", "show", config=cfg)) == f"{cfg}: {expected}"


def test_a_process_refuses_to_start_on_a_wrong_type(tmp_path: Path) -> None:
    """Not only `config show`: the worker stops before it touches Redis."""
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("requeue_after_s: abc\n", encoding="utf-8")
    assert one_line_error(hub("worker", config=cfg)) == (
        f"{cfg}: requeue_after_s: expected a number of seconds, got 'abc'")


def test_a_wrong_environment_value_names_the_variable(tmp_path: Path) -> None:
    assert one_line_error(hub("config", "show", env={"HUB_REQUEUE_AFTER_S": "abc"})) == (
        "HUB_REQUEUE_AFTER_S (requeue_after_s): expected a number of seconds, got 'abc'")
    assert one_line_error(hub("config", "show", env={"HUB_COOKIE_SECURE": "perhaps"})) == (
        "HUB_COOKIE_SECURE (cookie_secure): expected true or false, got 'perhaps'")
    with pytest.raises(ConfigError, match="^HUB_BATCH_SIZE: batch_size must be a whole number of at least 1, not 0$"):
        load_settings({"HUB_BATCH_SIZE": "0"})


def test_a_value_read_from_a_variable_in_the_file_is_typed_like_the_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("requeue_after_s: ${REQUEUE}\ncookie_secure: ${SECURE}\n", encoding="utf-8")
    s = load_settings({"HUB_CONFIG": str(cfg), "REQUEUE": "30", "SECURE": "true"})
    assert (s.requeue_after_s, s.cookie_secure) == (30.0, True)
    with pytest.raises(ConfigError, match=r"^.*hub\.yaml: requeue_after_s: expected a number of seconds, got 'x'$"):
        load_settings({"HUB_CONFIG": str(cfg), "REQUEUE": "x", "SECURE": "true"})


def test_an_unknown_key_is_refused_naming_the_nearest(tmp_path: Path) -> None:
    """A misspelt safety setting silently ignored would leave its default in force unnoticed."""
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("requeue_after: 30\n", encoding="utf-8")
    assert one_line_error(hub("config", "show", config=cfg)) == (
        f"{cfg}: unknown key 'requeue_after' (did you mean requeue_after_s?)")


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.yaml"
    cfg.write_text("requeue_after_s: 30\nbatch_size: 200\n", encoding="utf-8")
    r = hub("config", "show", "--json", config=cfg, env={"HUB_REQUEUE_AFTER_S": "45"})
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["requeue_after_s"] == {"value": 45.0, "from": "env HUB_REQUEUE_AFTER_S"}
    assert shown["batch_size"] == {"value": 200, "from": "file"}
    assert shown["sweep_interval_s"] == {"value": 1.0, "from": "default"}
    text = hub("config", "show", config=cfg, env={"HUB_REQUEUE_AFTER_S": "45"}).stdout
    assert any(line.split() == ["requeue_after_s", "45", "env", "HUB_REQUEUE_AFTER_S"] for line in text.splitlines())


def test_secrets_are_masked(tmp_path: Path) -> None:
    secrets = {"db": "db-pw-Zq81x", "redis": "redis-pw-Yk2", "mqtt": "mqtt-pw-Hh7", "session": "s" * 20 + "Sess1onKey99",
               "audit": "a" * 20 + "AuditKey4242", "gateway": "gw-api-key-Pp0"}
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(f"database_url: postgresql+psycopg://hub:{secrets['db']}@127.0.0.1/hub\n"
                   "redis_url: ${REDIS}\n"
                   "secret_key: ${SESSION}\n"
                   "plugins:\n"
                   "  mqtt_speaker: {host: 127.0.0.1, username: hub, password: '${MQTT}'}\n"
                   f"  http_gateway: {{api_key: {secrets['gateway']}}}\n", encoding="utf-8")
    env = {"REDIS": f"redis://hub:{secrets['redis']}@127.0.0.1:6379/0", "SESSION": secrets["session"],
           "MQTT": secrets["mqtt"], "HUB_AUDIT_KEY": secrets["audit"]}
    for args in (("config", "show"), ("config", "show", "--json")):
        r = hub(*args, config=cfg, env=env)
        assert r.returncode == 0, r.stderr
        for name, value in secrets.items():
            assert value not in r.stdout + r.stderr, f"the {name} secret is printed"
    shown = json.loads(r.stdout)
    assert shown["database_url"]["value"] == "postgresql+psycopg://hub:***@127.0.0.1/hub"
    assert shown["redis_url"]["value"] == "redis://hub:***@127.0.0.1:6379/0"
    assert shown["secret_key"] == {"value": "<set>", "from": "file"}
    assert shown["audit_key"] == {"value": "<set>", "from": "env HUB_AUDIT_KEY"}
    assert shown["plugins.mqtt_speaker.password"]["value"] == "<set>"
    assert shown["plugins.mqtt_speaker.username"]["value"] == "hub"
    assert shown["plugins.http_gateway.api_key"]["value"] == "<set>"
    assert secrets["session"] not in repr(load_settings({"HUB_CONFIG": str(cfg), **env}))


def test_the_example_configuration_is_valid() -> None:
    """examples/hub.yaml uses only declared keys, of the right types, given its variables."""
    env = {"HUB_CONFIG": str(ROOT / "examples" / "hub.yaml"), "HUB_DATABASE_URL": "postgresql+psycopg://hub@db/hub",
           "HUB_REDIS_URL": "redis://127.0.0.1:6379/0", "HUB_SECRET_KEY": "k" * 48, "HUB_MQTT_PASSWORD": "p"}
    s = load_settings(env)
    assert set(s.origins) >= {"queue", "default_ttl_s", "cookie_secure", "plugins"}
    assert "docs/configuration.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_tunables_reach_the_code() -> None:
    """Settings moved out of the code keep their old defaults and are used when changed."""
    from hub.delivery.ingest import Ingest
    from hub.delivery.release import Leadership

    defaults = Settings(database_url="sqlite://")
    ing = Ingest(Runtime(defaults), vendors=[])
    assert (ing.flush_interval_s, ing.batch_pause_s, ing.max_batch, ing.watch_interval_s, ing.retry_backoff_s) == (
        0.05, 0.02, 5000, 30.0, (1.0, 60.0))
    assert Leadership(Runtime(defaults), "t").ttl_ms == 10_000
    s = load_settings({"HUB_INGEST_MAX_BATCH": "100", "HUB_INGEST_FLUSH_INTERVAL_S": "0.2",
                       "HUB_SCHEDULER_LOCK_TTL_S": "4", "HUB_DATABASE_URL": "sqlite://"})
    ing = Ingest(Runtime(s), vendors=[])
    assert (ing.max_batch, ing.flush_interval_s) == (100, 0.2)
    assert Ingest(Runtime(s), vendors=[], max_batch=7).max_batch == 7  # a caller's word still wins
    assert Leadership(Runtime(s), "t").ttl_ms == 4000


def test_the_worker_heartbeat_is_a_setting() -> None:
    """A worker's job entry lives four beats (and 2 s): a shorter beat has a dead worker's job found sooner."""
    from hub.delivery.worker import make_worker

    job = type("Job", (), {"timeout": 60})()
    env = {"HUB_DATABASE_URL": "sqlite://", "HUB_QUEUE": "config-test-never-used"}
    assert make_worker(Runtime(load_settings(env))).get_heartbeat_ttl(job) == 10
    assert make_worker(Runtime(load_settings({**env, "HUB_WORKER_HEARTBEAT_S": "0.5"}))).get_heartbeat_ttl(job) == 4
