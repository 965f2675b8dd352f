"""The outputs runner end to end, with the real plugins: hub events published on Redis reach an
operations centre's webhook in order and signed; while it is down they become dead letters an
administrator sees and replays through the API; the open-data output publishes, from a seeded
database, files that validate against their published schema and carry the hub's statistics."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import frictionless
import pytest
from sqlalchemy import select

from hub import events
from hub.access.actors import local_admin
from hub.api import create_app
from hub.reports.output_context import HubOutputContext
from hub.reports.outputs import OutputRunner
from hub.runtime import Runtime
from hub.store.models import AuditEntry
from hub.testing import scaled, wait_until
from tests.support.cli import hub_cli
from tests.support.outputs import write_outputs
from tests.support.statistics_week import EXPECTED, local, seed
from tests.support.webhook_receiver import Receiver

SECRET = "ioc-webhook-secret-0123456789"
AT = datetime(2026, 12, 6, 7, 0, tzinfo=timezone.utc)


@pytest.fixture
def ort(rt: Runtime, tmp_path: Path) -> Iterator[Runtime]:
    rt.settings.outputs_file = str(tmp_path / "outputs.yaml")
    rt.settings.outputs_tick_s = 0.2
    rt.settings.outputs_retry_s = (0.05, 0.05)
    yield rt
    rt.redis.delete(f"{rt.settings.queue}:outputs")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    r.up()
    yield r
    r.down()


def start_runner(rt: Runtime, context: Any = None) -> OutputRunner:
    runner = OutputRunner(rt, context=context)
    runner.start()
    channel = events.channel_name(rt)
    assert wait_until(lambda: rt.redis.pubsub_numsub(channel)[0][1] >= 1, scaled(10)), "the runner never listened"
    return runner


def publish(rt: Runtime, *batch: events.Event) -> None:
    events.publish_many(list(batch), redis=rt.redis, channel=events.channel_name(rt))


def offline(device: str) -> events.Event:
    return events.DeviceOffline(device_id=device, previous="online", reason="heartbeat stopped", at=AT)


def delivery(n: int, device: str) -> events.Event:
    return events.DeliveryChanged(delivery_id=n, command_id=f"cmd-{n}", device_id=device, state="acked",
                                  previous="sent", reason=None, at=AT)


def test_events_reach_the_webhook_signed_in_order_and_dead_letters_are_replayed_through_the_api(
        ort: Runtime, receiver: Receiver) -> None:
    write_outputs(Path(ort.settings.outputs_file), {"name": "ioc", "plugin": "event_webhooks", "config": {
        "webhooks": [{"name": "ioc", "url": receiver.url, "secret": SECRET}],
        "max_attempts": 2, "backoff_initial_s": 0.05, "backoff_max_s": 0.1, "timeout_s": 2}})
    state = Path(ort.settings.state_dir) / "outputs" / "ioc"  # the entry's own, as the runner gives it
    api = create_app(ort, authenticator=local_admin).test_client()
    runner = start_runner(ort)
    try:
        assert wait_until(lambda: "ioc" in runner.workers and runner.workers["ioc"].opened, scaled(10))
        publish(ort, offline("loa-1"), delivery(1, "loa-1"), offline("loa-2"))
        assert wait_until(lambda: len(receiver.received) == 3, scaled(15)), receiver.received
        assert receiver.types() == ["device.offline", "delivery.changed", "device.offline"]
        assert [e["event"]["device_id"] for e in receiver.received] == ["loa-1", "loa-1", "loa-2"]
        assert [e["sequence"] for e in receiver.received] == [1, 2, 3] and receiver.refused == []
        assert (state / "sequence").exists()

        receiver.down()  # the operations centre is away: retried, then dead-lettered
        publish(ort, offline("loa-3"), delivery(2, "loa-3"))
        listed: dict[str, Any] = {}

        def dead() -> int:
            listed.update(api.get("/api/outputs/ioc/dead-letters").get_json())
            return listed.get("count", 0)

        assert wait_until(lambda: dead() == 2, scaled(20)), listed
        assert [d["envelope"]["sequence"] for d in listed["dead_letters"]] == [4, 5]
        assert all("Connection" in d["reason"] or "refused" in d["reason"] for d in listed["dead_letters"])
        assert (state / "dead_letters.jsonl").exists()

        receiver.up()  # back: the administrator replays them through the API
        answer = api.post("/api/outputs/ioc/dead-letters/replay", json={"all": True})
        assert answer.status_code == 202, answer.get_json()
        assert answer.get_json()["replay_requested"] == 2
        # the runner's output carries it out on its next periodic run (every 15 s)
        assert wait_until(lambda: len(receiver.received) == 5, scaled(40)), receiver.received
        assert [(e["sequence"], e["event"]["device_id"]) for e in receiver.received[3:]] == [(4, "loa-3"),
                                                                                             (5, "loa-3")]
        assert {e["id"] for e in receiver.received[3:]} == {d["envelope"]["id"] for d in listed["dead_letters"]}
        assert receiver.refused == []
        assert wait_until(lambda: dead() == 0, scaled(5)), listed
        with ort.db.session() as s:
            entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "output.dead_letters.replay")).one()
            assert entry.object_id == "ioc"
    finally:
        runner.stop()
    # stopped: close() wrote the sequence counter exactly (a running output reserves numbers ahead)
    assert (state / "sequence").read_text().strip() == "6"


def test_replay_asks_for_ids_or_all_and_names_what_is_wrong(ort: Runtime, receiver: Receiver) -> None:
    write_outputs(Path(ort.settings.outputs_file),
                  {"name": "ioc", "plugin": "event_webhooks",
                   "config": {"webhooks": [{"name": "ioc", "url": receiver.url, "secret": SECRET}]}},
                  {"name": "open-data", "plugin": "opendata", "config": {"directory": "/tmp/hub-open-data-unused"}})
    api = create_app(ort, authenticator=local_admin).test_client()
    bad = api.post("/api/outputs/ioc/dead-letters/replay", json={})
    assert bad.status_code == 422 and "ids" in bad.get_json()["errors"]["json"]
    gone = api.post("/api/outputs/ioc/dead-letters/replay", json={"ids": ["no-such-letter"]})
    assert gone.status_code == 202 and gone.get_json() == {"output": "ioc", "replay_requested": 0,
                                                           "not_found": ["no-such-letter"]}
    assert api.get("/api/outputs/nowhere/dead-letters").status_code == 404
    refused = api.get("/api/outputs/open-data/dead-letters")
    assert refused.status_code == 409 and "keeps no dead letters" in refused.get_json()["message"]


def test_the_cli_lists_dead_letters_and_asks_for_their_replay(config_file: Path, rt: Runtime) -> None:
    import yaml

    from hub_output_events.envelope import Envelope
    from hub_output_events.storage import DeadLetterStore

    outputs = config_file.parent / "outputs.yaml"
    write_outputs(outputs, {"name": "ioc", "plugin": "event_webhooks", "config": {
        "webhooks": [{"name": "ioc", "url": "http://127.0.0.1:9/hooks", "secret": SECRET}]}})
    config_file.write_text(yaml.safe_dump({**yaml.safe_load(config_file.read_text()),
                                           "outputs_file": str(outputs)}), encoding="utf-8")
    store = DeadLetterStore(Path(rt.settings.state_dir) / "outputs" / "ioc")  # where the runner's output keeps them
    letter = store.add("ioc", Envelope(id="e-1", sequence=7, type="device.offline", emitted_at=AT.isoformat(),
                                       event={"type": "device.offline", "device_id": "loa-9"}), 10, "HTTP 503: busy")
    shown = hub_cli(config_file, "outputs", "dead-letters", "ioc")
    assert shown.returncode == 0, shown.stderr
    assert letter["dead_id"] in shown.stdout and "HTTP 503: busy" in shown.stdout and "1 dead letters" in shown.stdout
    replayed = hub_cli(config_file, "outputs", "dead-letters", "ioc", "--replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "1 marked for replay" in replayed.stdout
    assert [r["replay_requested"] for r in store.list()] == [True]
    missing = hub_cli(config_file, "outputs", "dead-letters", "nowhere")
    assert missing.returncode != 0 and "unknown output nowhere" in missing.stderr


class SeededWeekContext(HubOutputContext):
    """The hub's context, its clock at 02:00 on Monday 10 November 2025 in the province: the seeded
    week has just ended."""

    def now(self) -> datetime:
        return local(10, 2).astimezone(timezone.utc)


ADDED = ("devices", "bulletins", "minutes_broadcast", "deliveries", "deliveries_acked", "emergency_targeted",
         "emergency_acked", "not_played", "uptime_percent")


def test_open_data_from_the_database_validates_and_carries_the_hubs_statistics(
        hub: Runtime, tmp_path: Path) -> None:
    seed(hub)
    published = tmp_path / "opendata"
    hub.settings.outputs_file = str(tmp_path / "outputs.yaml")
    hub.settings.outputs_tick_s = 0.2
    write_outputs(Path(hub.settings.outputs_file), {"name": "open-data", "plugin": "opendata", "config": {
        "directory": str(published), "periods": ["week"], "catch_up": 1, "settle_s": 0}})
    context = SeededWeekContext(hub)
    runner = start_runner(hub, context)
    try:  # the first periodic run comes when the output starts
        assert wait_until(lambda: (published / "datapackage.json").exists(), scaled(30))
    finally:
        runner.stop()
        hub.redis.delete(f"{hub.settings.queue}:outputs")
    report = frictionless.validate(str(published / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    week = list(csv.DictReader(io.StringIO((published / "week" / "2025-W45.csv").read_text("utf-8-sig"))))
    stats = {s.area_code: s for s in context.statistics(local(3, 0), local(10, 0))}
    assert [r["area_code"] for r in week] == ["80", "794", "807", "27694", "27697", "28099"]
    for r in week:
        s = stats[r["area_code"]]
        assert (r["period_start"], r["period_end"]) == ("2025-11-03", "2025-11-09")
        for name in ADDED:
            assert float(r[name]) == pytest.approx(float(getattr(s, name)), abs=0.01), (r["area_code"], name)
        assert int(r["bulletins_emergency"]) == s.bulletins_by_class.get("emergency", 0)
        if r["area_code"] in EXPECTED:  # and the hub's figures are those counted by hand
            assert int(r["bulletins"]) == EXPECTED[r["area_code"]]["bulletins"]
            assert float(r["minutes_broadcast"]) == EXPECTED[r["area_code"]]["minutes_broadcast"]


def test_each_entry_keeps_its_files_apart_and_other_plugins_get_no_state_dir(ort: Runtime, tmp_path: Path) -> None:
    from hub.reports.output_config import OutputBook, entry_state_dir

    hooks = {"webhooks": [{"name": "ioc", "url": "http://127.0.0.1:9/hooks", "secret": SECRET}]}
    write_outputs(Path(ort.settings.outputs_file), {"name": "ioc-a", "plugin": "event_webhooks", "config": hooks},
                  {"name": "ioc-b", "plugin": "event_webhooks", "config": hooks},
                  {"name": "open-data", "plugin": "opendata", "config": {"directory": str(tmp_path / "od")}})
    book = OutputBook(ort.settings.outputs_file, ort.plugins)
    book.refresh()
    assert book.error is None
    built = {n: c.instance(ort.plugins, entry_state_dir(ort.settings.state_dir, n)) for n, c in book.outputs.items()}
    root = Path(ort.settings.state_dir) / "outputs"
    assert built["ioc-a"].state_dir == root / "ioc-a" and built["ioc-b"].state_dir == root / "ioc-b"
    assert "state_dir" not in built["open-data"].config  # its settings have no such key: nothing added
