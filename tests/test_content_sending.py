"""Only a published content reaches devices, whatever the door: dispatch itself refuses the
others (the CLI, a plugin and the API all pass there), and a scheduled play whose content was
withdrawn before its start is not sent (issue 18, item 3)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.access.actors import LOCAL_ADMIN, Actor
from hub.content import editing
from hub.delivery.dispatch import DispatchError, submit
from hub.delivery.release import release_due
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.schemas import CommandSchema
from hub.store.db import utcnow
from hub.store.models import Content, Delivery

AREA = "27694"


def _device(rt: Runtime) -> str:
    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": "SPK-1", "vendor": "loopback", "kind": "speaker", "area_code": AREA,
                                      "address": "spk-1", "tags": []})
    return "SPK-1"


def _draft(rt: Runtime) -> str:
    with rt.db.session() as s:
        # recorded audio: a text bulletin would need speaking first (hub.content.publishing)
        return editing.create(s, LOCAL_ADMIN, {"title": "Tin", "kind": "audio_file", "area_code": AREA,
                                               "media": {"uri": "http://127.0.0.1:9/tin.mp3"}}).id


def _play(cid: str, **extra: str) -> dict:
    return CommandSchema().load({"verb": "play", "content_id": cid, "target": {"devices": ["SPK-1"]}, **extra})


def test_dispatch_refuses_an_unpublished_content_for_every_caller(hub: Runtime) -> None:
    _device(hub)
    cid = _draft(hub)
    for who in (LOCAL_ADMIN, Actor(name="cli:root", roles=frozenset({"administrator"}), via="cli")):
        with pytest.raises(DispatchError) as err:
            submit(hub, who, _play(cid))
        assert err.value.rule == "unpublished" and err.value.status == 409 and err.value.field == "content_id"


def test_a_content_from_before_the_workflow_counts_as_published(hub: Runtime) -> None:
    _device(hub)
    with hub.db.session() as s:
        s.add(Content(id=uuid.uuid4().hex, title="Cũ", kind="tts_text", body="x", created_by="x",
                      created_at=utcnow()))
        cid = s.scalars(select(Content.id)).one()
    assert submit(hub, LOCAL_ADMIN, _play(cid)).created


def test_a_scheduled_play_whose_content_is_archived_before_its_start_is_not_sent(hub: Runtime) -> None:
    _device(hub)
    cid = _draft(hub)
    with hub.db.session() as s:
        editing.transition(s, LOCAL_ADMIN, s.get(Content, cid), "approve_and_publish")
    start = utcnow() + timedelta(minutes=10)
    sub = submit(hub, LOCAL_ADMIN, _play(cid, start_at=start.isoformat()))
    with hub.db.session() as s:
        editing.transition(s, LOCAL_ADMIN, s.get(Content, cid), "archive", "tin đã bị thu hồi")
    res = release_due(hub, now=start - timedelta(seconds=1))
    assert res.withdrawn == 1 and res.jobs == 0
    with hub.db.session() as s:
        row = s.scalars(select(Delivery).where(Delivery.command_id == sub.command.id)).one()
    assert row.state == "superseded" and "archived" in row.reason
