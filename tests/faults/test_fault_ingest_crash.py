"""(f) The ingest killed with SIGKILL after it heard a fan-out's acks and before it stored them,
then a new ingest: every ack a device sent must end `acked`.

The finding: the ingest acknowledged (PUBACK) each ack to the broker as it arrived and held it in
memory until its writer committed; a `kill -9` in between lost it for good (21 and 41 of 2,000
devices played the bulletin and ended `expired`). Now the MQTT listener acknowledges only once
the writer committed, so the broker hands the unconfirmed messages of the persistent session to
the next ingest. The drill setting `ingest_commit_delay_s` holds each batch before it is written, so
that the kill surely comes between receipt and commit.

Run with -s to see the figures."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import yaml

from hub.access.actors import LOCAL_ADMIN
from hub.store.db import utcnow
from hub.delivery.dispatch import submit
from hub.schemas import CommandSchema
from tests.support.processes import wait_until

from tests.support.fault_services import dump_logs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
N = 500


def test_fault_ingest_killed_between_receipt_and_commit(fault_hub) -> None:
    h = fault_hub(ingest_commit_delay_s=40.0)
    addresses = h.register(N)
    fleet = h.start_fleet(addresses)
    ing1 = h.start("ingest")
    wait_until(lambda: "ingest running" in ing1.output(), 30, "ingest-1 to listen", h.live())
    w = h.start("worker")
    wait_until(lambda: "Listening on" in w.output(), 30, "the worker to listen", h.live())
    sub = submit(h.rt, LOCAL_ADMIN, CommandSchema().load({
        "verb": "set_volume", "params": {"level": 21}, "priority": "emergency",
        "expires_at": (utcnow() + timedelta(seconds=75)).isoformat(), "target": {"areas": ["27694"]}}))
    cid = sub.command.id
    wait_until(lambda: sum(d.acks_sent for d in fleet.devices()) >= N, 30, "every device to ack", h.live())
    time.sleep(1.0)  # the broker hands them to ingest-1, whose writer holds them before writing
    assert h.counts(cid)["acked"] == 0, "the drill needs the acks heard but not yet committed"
    h.kill9("ingest-1")
    killed_at = time.monotonic()

    cfg = yaml.safe_load(h.config.read_text(encoding="utf-8"))
    cfg["ingest_commit_delay_s"] = 0.0
    h.config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    h.start("ingest")
    rows = h.wait_terminal(cid, timeout=120)
    fig = h.figures("f: ingest killed between receipt and commit", cid, rows,
                    acks_sent=sum(d.acks_sent for d in fleet.devices()),
                    recovered_after_s=round(time.monotonic() - killed_at, 1))
    h.check_consistent(cid, rows)
    assert fig["acked"] == N, dump_logs(h)
