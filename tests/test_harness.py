"""The plugin test harness drives the real MQTT plugin end to end, as vendors' suites will."""
from __future__ import annotations

import pytest

from hub.testing import HubHarness
from tests.support.services import MQTT_HOST, MQTT_PORT

hub_mqtt_speaker = pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402


def test_harness_sends_through_dispatch_and_hears_acks(tmp_path, mqtt_prefix, services) -> None:
    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config) as hub, \
            Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice("a1"), SimDevice("b1", reject_all=True)],
                  status_interval=0.5) as fleet:
        hub.add_device("A1", "a1")
        hub.add_device("B1", "b1")
        sub = hub.send("set_volume", ["A1", "B1"], {"level": 35})
        got = hub.wait(sub.command.id)
        assert got["A1"].state == "acked" and got["A1"].result["volume"] == 35
        assert got["B1"].state == "failed" and "device fault" in got["B1"].reason
        assert hub.wait_status("A1", lambda st: st["volume"] == 35)["volume"] == 35


def test_harness_leaves_no_rq_keys_on_the_shared_redis(tmp_path, mqtt_prefix, services) -> None:
    """rq's registries (rq:finished:<queue>, …) never expire: a harness with queue names of its
    own must remove them, or every test run leaves keys behind on a shared Redis."""
    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": mqtt_prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config) as hub, \
            Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice("a1")], status_interval=5):
        hub.add_device("A1", "a1")
        sub = hub.send("set_volume", ["A1"], {"level": 35})
        assert hub.wait(sub.command.id)["A1"].state == "acked"
        redis, queue = hub.rt.redis, hub.rt.settings.queue
        job_ids = [k.decode().split(":")[-1] for k in redis.scan_iter(f"rq:job:hub-{sub.command.id}-*")]
        assert job_ids
        assert list(redis.scan_iter(f"rq:finished:{queue}*"))  # what there is to clean
    left = [k for k in redis.scan_iter(f"rq:*:{queue}*")] + \
        [k for jid in job_ids for k in redis.scan_iter(f"rq:*{jid}*")]
    assert left == []
