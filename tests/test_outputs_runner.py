"""The outputs runner (hub.reports.outputs): outputs switched on by the outputs file alone, each
given only the events it names, on its own thread, so one that hangs or fails costs only itself;
transient failures retried; a broken edit of the file keeps the last good set, and says so."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hub import events
from hub.reports.outputs import OutputRunner, describe
from hub.runtime import Runtime
from hub.testing import scaled, wait_until
from tests.support import outputs as kinds
from tests.support.outputs import entry, write_outputs

AT = datetime(2026, 12, 6, 7, 0, tzinfo=timezone.utc)


def offline(device: str) -> events.Event:
    return events.DeviceOffline(device_id=device, previous="online", reason="heartbeat stopped", at=AT)


def online(device: str) -> events.Event:
    return events.DeviceOnline(device_id=device, previous="offline", reason=None, at=AT)


@pytest.fixture
def ort(rt: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    kinds.reset()
    kinds.register(rt.plugins)
    rt.settings.outputs_file = str(tmp_path / "outputs.yaml")
    rt.settings.outputs_tick_s = 0.1
    rt.settings.outputs_retry_s = (0.05, 0.05, 0.05)
    write_outputs(Path(rt.settings.outputs_file))
    yield rt
    kinds.RELEASE.set()
    rt.redis.delete(f"{rt.settings.queue}:outputs")


@pytest.fixture
def runner(ort: Runtime) -> Iterator[OutputRunner]:
    r = OutputRunner(ort)
    r.start()
    channel = events.channel_name(ort)
    assert wait_until(lambda: ort.redis.pubsub_numsub(channel)[0][1] >= 1, scaled(10)), "the runner never listened"
    yield r
    kinds.RELEASE.set()  # a stuck output lets go, so that it stops at once
    r.stop()


def publish(rt: Runtime, *batch: events.Event) -> None:
    events.publish_many(list(batch), redis=rt.redis, channel=events.channel_name(rt))


def started(runner: OutputRunner, *names: str) -> bool:
    return wait_until(lambda: all(n in runner.workers and runner.workers[n].opened for n in names), scaled(10))


def test_each_output_gets_only_the_events_its_manifest_names(ort: Runtime, runner: OutputRunner) -> None:
    write_outputs(Path(ort.settings.outputs_file), entry("ioc", "test_offline_only"),
                  entry("log", "test_everything"))
    assert started(runner, "ioc", "log")
    publish(ort, online("loa-1"), offline("loa-2"), online("loa-2"), offline("loa-3"))
    assert wait_until(lambda: len(kinds.SEEN["log"]) == 4, scaled(10)), kinds.SEEN
    assert wait_until(lambda: len(kinds.SEEN["ioc"]) == 2, scaled(10)), kinds.SEEN
    assert kinds.SEEN["ioc"] == ["device.offline", "device.offline"]
    assert kinds.SEEN["log"] == ["device.online", "device.offline", "device.online", "device.offline"]
    assert wait_until(lambda: len(kinds.PERIODIC["log"]) >= 2, scaled(5))  # run_periodic every interval_s
    assert kinds.OPENED["ioc"].hub_name == ort.settings.hub_name  # opened with the hub's context


def test_a_hanging_or_failing_output_does_not_hold_up_another(ort: Runtime, runner: OutputRunner) -> None:
    write_outputs(Path(ort.settings.outputs_file), entry("stuck", "test_stuck"),
                  entry("refuses", "test_everything", broken=True), entry("log", "test_everything"))
    assert started(runner, "stuck", "refuses", "log")
    publish(ort, *[offline(f"loa-{i}") for i in range(20)])
    assert wait_until(lambda: len(kinds.SEEN["log"]) == 20, scaled(10)), kinds.SEEN
    assert wait_until(lambda: kinds.ATTEMPTS["stuck"] == 1, scaled(5))  # inside its first handle() for good
    assert kinds.ATTEMPTS["stuck"] == 1  # the other 19 wait in its queue
    assert wait_until(lambda: runner.workers["refuses"].counts["given_up"] == 20, scaled(10))
    runner.publish_status()
    rows = {r["name"]: r for r in describe(ort)["outputs"]}
    assert rows["log"]["status"]["ok"] and rows["log"]["status"]["handled"] == 20
    assert rows["stuck"]["status"]["waiting"] == 19 and rows["stuck"]["status"]["running"]
    refused = rows["refuses"]["status"]
    assert not refused["ok"] and refused["given_up"] == 20 and refused["retried"] == 0  # not transient: no retry
    assert "the destination refused it (given up)" in refused["last_error"]


def test_transient_failures_are_retried_with_backoff(ort: Runtime, runner: OutputRunner) -> None:
    write_outputs(Path(ort.settings.outputs_file), entry("flaky", "test_everything", fail_first=2),
                  entry("down", "test_offline_only", fail_first=100))
    assert started(runner, "flaky", "down")
    publish(ort, offline("loa-1"), offline("loa-2"))
    assert wait_until(lambda: kinds.SEEN["flaky"] == ["device.offline", "device.offline"], scaled(10)), kinds.SEEN
    assert kinds.ATTEMPTS["flaky"] == 4  # twice down, then both delivered
    flaky = runner.workers["flaky"].status()
    assert flaky["ok"] and flaky["retried"] == 2 and flaky["given_up"] == 0
    # down for good: each event tried 1 + len(outputs_retry_s) times, then given up and counted
    assert wait_until(lambda: runner.workers["down"].counts["given_up"] == 2, scaled(10))
    assert kinds.ATTEMPTS["down"] == 8 and not kinds.SEEN["down"]
    assert not runner.workers["down"].status()["ok"]


def test_an_output_is_switched_on_and_off_by_editing_the_file_and_a_broken_edit_keeps_the_last_good_set(
        ort: Runtime, runner: OutputRunner) -> None:
    path = Path(ort.settings.outputs_file)
    write_outputs(path, entry("ioc", "test_offline_only", enabled=False))
    assert wait_until(lambda: "ioc" in runner.book.outputs, scaled(5))
    publish(ort, offline("loa-1"))
    assert not wait_until(lambda: kinds.SEEN["ioc"], 0.5) and "ioc" not in runner.workers  # configured, not on
    write_outputs(path, entry("ioc", "test_offline_only"))  # switched on by the file alone, no restart
    assert started(runner, "ioc")
    publish(ort, offline("loa-2"))
    assert wait_until(lambda: kinds.SEEN["ioc"] == ["device.offline"], scaled(10))

    path.write_text("outputs:\n  - name: ioc\n    plugin: test_offline_only\n    config: {key: ioc, nope: 1}\n",
                    encoding="utf-8")
    assert wait_until(lambda: runner.book.error is not None, scaled(5))
    assert "output ioc" in runner.book.error and "nope" in runner.book.error
    publish(ort, offline("loa-3"))  # still running the last good configuration
    assert wait_until(lambda: len(kinds.SEEN["ioc"]) == 2, scaled(10))
    runner.publish_status()
    shown = describe(ort)
    assert "nope" in shown["error"] and shown["runner"]["alive"]
    assert [(r["name"], r["configured"], r["status"]["ok"]) for r in shown["outputs"]] == [("ioc", False, True)]

    write_outputs(path)  # an empty list: every output stopped
    assert wait_until(lambda: not runner.workers, scaled(5))


def test_an_output_whose_configuration_cannot_start_says_why_and_the_others_run(
        ort: Runtime, runner: OutputRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(ort.settings.outputs_file)
    write_outputs(path, entry("log", "test_everything"),
                  {"name": "secret", "plugin": "test_everything", "config": {"key": "${HUB_TEST_UNSET_OUTPUT}"}})
    assert wait_until(lambda: runner.book.error is not None, scaled(5))
    assert "environment variable HUB_TEST_UNSET_OUTPUT is not set" in runner.book.error
    assert not runner.workers  # no good file yet: nothing runs
    monkeypatch.setenv("HUB_TEST_UNSET_OUTPUT", "secret")
    write_outputs(path, entry("log", "test_everything"),
                  {"name": "secret", "plugin": "test_everything", "config": {"key": "${HUB_TEST_UNSET_OUTPUT}"}})
    assert started(runner, "log", "secret")
    runner.publish_status()
    rows = {r["name"]: r for r in describe(ort)["outputs"]}
    assert rows["secret"]["config"]["config"]["key"] == "${HUB_TEST_UNSET_OUTPUT}"  # names the variable only
