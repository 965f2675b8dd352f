"""Typed events (hub.events): what the hub publishes, on the one channel, read back as types by
`listen` the way an output plugin or the console will; the JSON keeps the fields it had."""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from hub import events
from hub.delivery.ingest import Ingest
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.testing import wait_until
from hub.ports import free_port as _free_port

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 12, 5, 8, 30, 15, 250000, tzinfo=timezone.utc)


class Heard:
    """`events.listen` in a thread, as a plugin runs it, collecting what it yields. Entered once
    it is subscribed (pub/sub keeps nothing for a subscriber not there yet)."""

    def __init__(self, rt: Runtime, types: events.EventSelector = None) -> None:
        self.redis, self.channel, self.types = rt.redis, events.channel_name(rt), types
        self.events: list[events.Event] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for event in events.listen(self.redis, self.channel, self.types, stop=self.stop, poll_s=0.05):
            self.events.append(event)

    def __enter__(self) -> Heard:
        self.thread.start()
        assert wait_until(lambda: self.redis.pubsub_numsub(self.channel)[0][1] >= 1, 10), "listener subscribed"
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "the listener stops when asked"


def test_a_device_going_offline_is_heard_on_the_channel_as_a_typed_event(rt: Runtime, legacy_areas: None,
                                                                          mqtt_prefix: str) -> None:
    pytest.importorskip("hub_mqtt_speaker")
    from hub_mqtt_speaker.device import SimDevice
    from hub_mqtt_speaker.simulator import Fleet

    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": "EV-1", "vendor": "mqtt_speaker", "kind": "speaker",
                                      "area_code": "27694", "address": "ev-1", "tags": []})
    in_process: list[events.Event] = []
    unsubscribe = events.subscribe(in_process.append, types=[events.DeviceOffline])
    broker = rt.settings.plugins["mqtt_speaker"]
    ingest = Ingest(rt, vendors=["mqtt_speaker"])
    fleet = Fleet(broker["host"], broker["port"], mqtt_prefix, [SimDevice("ev-1")], status_interval=0.3)
    try:
        with Heard(rt, types=["device.offline"]) as offline, Heard(rt) as everything:
            ingest.start()
            fleet.start(timeout=15)
            assert wait_until(lambda: any(e.type == "device.online" for e in everything.events), 15), \
                "EV-1 came online"
            fleet.kill("ev-1")  # its link drops: the broker publishes its last will
            assert wait_until(lambda: offline.events, 15), "an offline event on the channel"
        went = offline.events[0]
        assert isinstance(went, events.DeviceOffline) and isinstance(went, events.DeviceStateChanged)
        assert (went.device_id, went.state, went.previous) == ("EV-1", "offline", "online")
        assert "link lost" in (went.reason or "")
        assert isinstance(went.at, datetime)
        assert [e.type for e in offline.events] == ["device.offline"]  # chose offline: heard nothing else
        assert [e.type for e in everything.events] == ["device.online", "device.offline"]
        assert in_process == [went]  # the same event, in this process, typed
    finally:
        unsubscribe()
        fleet.stop(clear_retained=True)
        ingest.stop()


def test_the_wire_format_keeps_the_fields_published_before_events_were_typed() -> None:
    event = events.device_state_changed("D-1", "offline", "online", "link lost (last will)", AT)
    assert isinstance(event, events.DeviceOffline)
    # what hub.fleet.health published as a dict: a console or alerting output may read exactly this
    before = {"type": "device.offline", "device_id": "D-1", "state": "offline", "previous": "online",
              "reason": "link lost (last will)", "at": AT.isoformat()}
    assert json.loads(event.to_json()) == before
    assert list(json.loads(event.to_json())) == list(before)  # same order too
    assert events.Event.from_json(json.dumps(before)) == event
    assert events.Event.from_dict({**before, "added_by_a_newer_hub": 1}) == event  # fields only get added
    assert event["type"] == "device.offline" and event["device_id"] == "D-1"  # read as the dicts were
    assert [events.device_state_changed("D", s, "unknown", None, AT).type for s in ("online", "degraded")] == \
        ["device.online", "device.degraded"]
    with pytest.raises(ValueError, match="'unknown'"):
        events.device_state_changed("D", "unknown", "online", None, AT)


def test_delivery_and_command_events_round_trip_through_json_and_the_channel(rt: Runtime) -> None:
    changed = events.DeliveryChanged(delivery_id=42, command_id="c" * 32, device_id="SPK-1", state="acked",
                                     previous="sent", reason=None, at=AT)
    finished = events.CommandFinished(command_id="c" * 32, deliveries={"acked": 120, "expired": 3}, at=AT)
    for event in (changed, finished):
        assert events.Event.from_json(event.to_json()) == event
        assert type(events.Event.from_json(event.to_json())) is type(event)
    assert json.loads(changed.to_json()) == {"type": "delivery.changed", "delivery_id": 42, "command_id": "c" * 32,
                                             "device_id": "SPK-1", "state": "acked", "previous": "sent",
                                             "reason": None, "at": AT.isoformat()}
    assert json.loads(finished.to_json())["deliveries"] == {"acked": 120, "expired": 3}
    with Heard(rt, types=[events.DeliveryChanged, "command.*"]) as heard:
        events.publish_many([changed, events.device_state_changed("D-1", "online", "unknown", None, AT), finished],
                            redis=rt.redis, channel=events.channel_name(rt))
        assert wait_until(lambda: len(heard.events) == 2, 10), heard.events
    assert heard.events == [changed, finished]


def test_unknown_types_are_skipped_and_malformed_messages_do_not_stop_the_listener(rt: Runtime, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="hub.events")
    good = events.device_state_changed("D-2", "degraded", "online", "faults: amp_overheat", AT)
    channel = events.channel_name(rt)
    garbage = [b"not json", b"\xff\xfe", b"[1, 2]", b'{"no": "type"}',
               json.dumps({"type": "device.offline", "device_id": "D-2"}).encode(),  # fields missing
               json.dumps({**good.to_dict(), "at": "yesterday"}).encode(),
               json.dumps({**good.to_dict(), "device_id": 7}).encode()]
    with Heard(rt) as heard:
        rt.redis.publish(channel, json.dumps({"type": "robot.danced", "robot": "R2"}))  # a newer hub's type
        for raw in garbage:
            rt.redis.publish(channel, raw)
        events.publish(good, redis=rt.redis, channel=channel)
        assert wait_until(lambda: heard.events, 10), "the listener still reads after the bad ones"
    assert heard.events == [good]
    malformed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(malformed) == len(garbage), malformed
    assert any("'at'" in m for m in malformed) and any("'device_id'" in m for m in malformed)
    assert not any("robot.danced" in m for m in malformed)  # skipped quietly: not an error


def test_in_process_subscribers_choose_their_types() -> None:
    heard: dict[str, list[str]] = {"names": [], "class": [], "prefix": [], "all": []}
    unsubscribes = [events.subscribe(lambda e: heard["names"].append(e.type), types=["device.offline"]),
                    events.subscribe(lambda e: heard["class"].append(e.type), types=[events.DeviceStateChanged]),
                    events.subscribe(lambda e: heard["prefix"].append(e.type), types=["command.*"]),
                    events.subscribe(lambda e: heard["all"].append(e.type))]
    try:
        events.publish_many([events.device_state_changed("D", "offline", "online", None, AT),
                             events.device_state_changed("D", "online", "offline", None, AT),
                             events.CommandFinished(command_id="c1", deliveries={"acked": 1}, at=AT)])
    finally:
        for unsubscribe in unsubscribes:
            unsubscribe()
    assert heard == {"names": ["device.offline"], "class": ["device.offline", "device.online"],
                     "prefix": ["command.finished"], "all": ["device.offline", "device.online", "command.finished"]}
    with pytest.raises(ValueError, match="'device.ofline'"):  # a typo would subscribe to nothing
        events.subscribe(print, types=["device.ofline"])
    with pytest.raises(TypeError):
        events.publish({"type": "device.offline"})  # type: ignore[arg-type]


# A string literal ending in ".events" right after a placeholder or its opening quote
# (f"{queue}.events", queue + ".events", "%s.events"): a channel name built by hand. Not "hub.events".
CHANNEL_BUILT = re.compile(r"""(?:["'}]|%s)\.events["']""")


def test_the_events_channel_name_is_built_in_one_place_only() -> None:
    assert CHANNEL_BUILT.search('channel=f"{self.rt.settings.queue}.events")')  # what ingest.py did
    assert CHANNEL_BUILT.search("rt.settings.queue + '.events'")
    assert CHANNEL_BUILT.search('"%s.events" % queue')
    assert not CHANNEL_BUILT.search('events.channel_name(rt); logging.getLogger("hub.events")')
    offenders = []
    for path in sorted([*(ROOT / "hub").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]):
        if path == ROOT / "hub" / "events.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if CHANNEL_BUILT.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "use hub.events.channel_name():\n" + "\n".join(offenders)


def test_the_channel_is_the_queue_s_for_a_runtime_or_its_settings(rt: Runtime) -> None:
    assert events.channel_name(rt) == events.channel_name(rt.settings) == f"{rt.settings.queue}.events"




def test_the_listener_waits_for_a_redis_that_went_away_and_goes_on(tmp_path: Path, caplog) -> None:
    # its own Redis, to stop and start again: the shared one stays up for the other tests
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp_path)]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        assert wait_until(lambda: _answers(port), 10), "redis-server started"
        return proc

    server = start()
    redis = Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    caplog.set_level(logging.INFO, logger="hub.events")
    first = events.device_state_changed("D-3", "offline", "online", "link lost", AT)
    second = events.device_state_changed("D-3", "online", "offline", None, AT)
    heard: list[events.Event] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: heard.extend(events.listen(redis, "private.events", stop=stop,
                                                                        poll_s=0.05)), daemon=True)
    try:
        thread.start()
        assert wait_until(lambda: redis.pubsub_numsub("private.events")[0][1] >= 1, 10)
        events.publish(first, redis=redis, channel="private.events")
        assert wait_until(lambda: heard == [first], 10)
        server.terminate()
        server.wait(10)
        assert wait_until(lambda: any("lost Redis" in r.getMessage() for r in caplog.records), 10)
        server = start()
        assert wait_until(lambda: redis.pubsub_numsub("private.events")[0][1] >= 1, 10), "subscribed again"
        events.publish(second, redis=redis, channel="private.events")
        assert wait_until(lambda: heard == [first, second], 10), heard
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=5)
        server.terminate()
        server.wait(10)


def _answers(port: int) -> bool:
    try:
        return bool(Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2).ping())
    except Exception:
        return False
