"""The as-run log as people read it: GET /api/as-run and `hub as-run` — segments the devices
confirmed, each with the device's name and commune, times in +07:00, the planned slot beside it,
and a `not_played` row where a planned play never reached the air; a commune account sees its own
devices only."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

from hub.access.actors import Actor, local_admin
from hub.api import create_app
from hub.delivery.ingest import Ingest
from hub.store.db import utcnow
from hub.store.models import Content
from hub.vendor import Ack
from tests.support.api import assert_error
from tests.support.cli import hub as hub_cli
from tests.support.dispatch import add, send, work

PROGRAMMES = Actor(name="scheduler:programmes")
COMMUNE_VIEWER = Actor(name="xa-viewer", roles=frozenset({"viewer"}), areas=frozenset({"27694"}))


def _programme(rt) -> tuple[str, str]:  # noqa: ANN001
    with rt.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Chương trình sáng", kind="audio_file", created_by="t",
                    media={"uri": "http://127.0.0.1:9/sang.mp3", "duration_s": 600}, created_at=utcnow())
        s.add(c)
    cmd = send(rt, {"verb": "play", "content_id": c.id, "target": {"areas": ["27694", "28099"]},
                    "expires_at": (utcnow() + timedelta(hours=1)).isoformat(), "idempotency_key": "programme:sang:1"},
               PROGRAMMES).command
    work(rt)
    return cmd.id, c.id


def test_the_as_run_log_shows_what_played_and_what_never_did(hub, config_file: Path) -> None:  # noqa: ANN001
    add(hub, "pending-1", area="27694")
    add(hub, "pending-2", area="28099")
    add(hub, "refuse-3", area="27694")
    command_id, content_id = _programme(hub)
    ingest = Ingest(hub, vendors=[])
    ingest.sink.ack("loopback", "pending-1", Ack(command_id, True, detail={"activity": "playing"}))
    ingest.sink.status("loopback", "pending-2", {"online": True, "activity": "playing", "source": content_id,
                                                 "reported_at": utcnow()})
    ingest.flush()

    body = create_app(hub, authenticator=local_admin).test_client().get("/api/as-run").get_json()
    rows = {r["device_id"]: r for r in body}
    assert set(rows) == {"PENDING-1", "PENDING-2", "REFUSE-3"}
    for did in ("PENDING-1", "PENDING-2"):
        r = rows[did]
        assert (r["command_id"], r["outcome"], r["ended_at"]) == (command_id, "playing", None)
        assert r["started_at"].endswith("+07:00") and r["planned"]["expires_at"].endswith("+07:00")
        assert r["planned"]["programme_key"] == "programme:sang:1" and r["commune"]
    not_played = rows["REFUSE-3"]
    assert (not_played["outcome"], not_played["delivery_state"]) == ("not_played", "failed")
    assert "rejected" in not_played["reason"] and not_played["started_at"] is None

    viewer = create_app(hub, authenticator=lambda _r: COMMUNE_VIEWER).test_client()
    assert {r["device_id"] for r in viewer.get("/api/as-run").get_json()} == {"PENDING-1", "REFUSE-3"}
    assert [r["device_id"] for r in viewer.get("/api/as-run?device_id=PENDING-1").get_json()] == ["PENDING-1"]
    assert viewer.get("/api/as-run?area=28099").get_json() == []  # another commune: nothing of it
    assert_error(viewer.get("/api/as-run?from=2030-01-02T00:00:00%2B07:00&to=2030-01-01T00:00:00%2B07:00"),
                 422, "query", "to")
    assert_error(viewer.get("/api/as-run?area=nowhere"), 422, "query", "area")

    out = hub_cli(config_file, "as-run", "--device", "REFUSE-3", "--json")
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["outcome"] for line in out.stdout.splitlines()] == ["not_played"]
    text = hub_cli(config_file, "as-run", "--area", "27694")
    assert "PENDING-1" in text.stdout and "playing" in text.stdout and "PENDING-2" not in text.stdout
