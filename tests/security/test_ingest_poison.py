"""Reproduction of the finding "one bad device message stops the province": a status with an
unpaired surrogate (`"faults":["amp \\ud800"]`) or a time that does not exist in UTC
(`9999-12-31T23:59:59-01:00`) made every ingest write batch fail and be retried for ever, so a
command's acks never reached the database. Through the real broker, the real `hub ingest` and
`hub worker` processes: the poisoned reports go to the quarantine (visible in the API and the
CLI), and a command sent after them still ends `acked` on every device."""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN, local_admin
from hub.store.db import utcnow
from hub.delivery.dispatch import counts, submit
from hub.store.models import DeviceStatus
from hub.fleet.registry import upsert_device
from hub.schemas import CommandSchema
from tests.support.services import MQTT_HOST, MQTT_PORT
from tests.support.processes import Proc, wait_until

pytest.importorskip("hub_mqtt_speaker")
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

N = 20
SURROGATE = b'{"online": true, "ts": "2026-12-05T08:00:00Z", "faults": ["amp \\ud800"]}'
NO_SUCH_TIME = b'{"online": true, "ts": "9999-12-31T23:59:59-01:00", "volume": 40}'


def test_a_poisoned_report_does_not_stop_the_acks_of_a_command(rt, legacy_areas, config_file, mqtt_prefix,
                                                                 tmp_path) -> None:
    addresses = [f"spk-{i:02d}" for i in range(N)]
    with rt.db.session() as s:
        for a in addresses:
            upsert_device(s, rt.plugins, {"id": a.upper(), "vendor": "mqtt_speaker", "kind": "speaker",
                                          "area_code": "27694", "address": a, "tags": []})
    fleet = Fleet(MQTT_HOST, MQTT_PORT, mqtt_prefix, [SimDevice(a) for a in addresses], status_interval=30.0)
    fleet.start(timeout=30)
    procs = [Proc("ingest", ["ingest"], config_file, tmp_path), Proc("worker", ["worker"], config_file, tmp_path)]
    try:
        def online() -> bool:
            with rt.db.session() as s:
                return len(s.scalars(select(DeviceStatus.device_id).where(DeviceStatus.online.is_(True))).all()) >= N
        wait_until(online, 60, "devices to show online", procs)
        # the poison, among the good reports every device keeps sending
        fleet.publish_as("spk-03", "status", SURROGATE)
        fleet.publish_as("spk-07", "status", NO_SUCH_TIME)
        sub = submit(rt, LOCAL_ADMIN, CommandSchema().load({
            "verb": "set_volume", "params": {"level": 33}, "priority": "emergency",
            "expires_at": (utcnow() + timedelta(seconds=60)).isoformat(), "target": {"areas": ["27694"]}}))

        def acked() -> bool:
            with rt.db.session() as s:
                return counts(s, sub.command.id)["acked"] == N
        wait_until(acked, 45, f"all {N} deliveries to end acked", procs)

        # kept, with who sent it and why, for administrators to see
        app = create_app(rt, authenticator=local_admin)
        body = app.test_client().get("/api/ingest/quarantine").get_json()
        by_address = {q["address"]: q for q in body}
        assert {"spk-03", "spk-07"} <= set(by_address), body
        assert "surrogate" in by_address["spk-03"]["reason"] and "\\ud800" in by_address["spk-03"]["payload"]
        assert "9999-12-31" in by_address["spk-07"]["reason"]
        assert by_address["spk-03"]["device_id"] == "SPK-03" and by_address["spk-03"]["vendor"] == "mqtt_speaker"
        cli = subprocess.run([sys.executable, "-m", "hub.cli", "ingest", "quarantine"], capture_output=True,
                             text=True, env={"HUB_CONFIG": str(config_file), "PATH": "/usr/bin:/bin"}, timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert "spk-03" in cli.stdout and "spk-07" in cli.stdout and "2 quarantined" in cli.stdout
        assert "ingest flush failed" not in procs[0].output()
    finally:
        for p in procs:
            p.stop()
        fleet.stop(clear_retained=True)
