"""The programmes' week and the as-run log in the console (Flask test client, a real session): every
occurrence of the week in the province's time with the neighbouring weeks a click away, and for one
day what each device played, what interrupted it and what never reached the air."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

from hub.access.actors import LOCAL_ADMIN, Actor
from hub.api import create_app
from hub.broadcast import editing
from hub.broadcast.programmes import LOCAL_TZ
from hub.delivery.ingest import Ingest
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.models import Content
from hub.vendor import Ack
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in
from tests.support.dispatch import add, send, work
from tests.support.programmes import next_monday, published_content, week_calendars


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _client(rt: Runtime, name: str, roles: list[str], areas: list[str]):  # noqa: ANN202
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    client_sign_in(client, name)
    return client


def test_the_week_shows_every_occurrence_in_the_provinces_time(hub: Runtime) -> None:
    add(hub, "w1", area="27694")
    add(hub, "far-1", area="28099")
    monday = next_monday()
    news, weekly = week_calendars(monday)
    cid = published_content(hub)
    editing.create(hub, LOCAL_ADMIN, {"name": "Thời sự", "ical": news, "target": {"areas": ["27694"]},
                                      "content_id": cid})
    editing.create(hub, LOCAL_ADMIN, {"name": "Bản tin xa", "ical": weekly, "target": {"areas": ["28099"]},
                                      "content_id": cid})
    client = _client(hub, "xem-27694", ["viewer"], ["27694"])
    html = client.get(f"/console/programmes?week={(monday + timedelta(days=3)).date().isoformat()}",
                      headers=HTML).get_data(as_text=True)
    starts = {day: re.findall(r'data-start="(\d\d:\d\d)"', cell)
              for day, cell in re.findall(r'<td data-day="([\d-]+)">(.*?)</td>', html, re.S)}
    days = [(monday + timedelta(days=i)).date().isoformat() for i in range(7)]
    assert [starts[d] for d in days] == [["06:00", "17:00"], ["06:00", "17:00"], ["06:00"], ["06:30", "17:00"],
                                         ["06:00", "17:00"], [], []], "local times; Wednesday evening excluded, " \
                                                                      "Thursday morning moved"
    page = _text(html)
    assert "Thứ Hai" in page and "Chủ Nhật" in page and "Bản tin xa" not in page, "another district's programme"
    assert f"Tuần từ {monday.strftime('%d/%m/%Y')} đến {(monday + timedelta(days=6)).strftime('%d/%m/%Y')}" in page
    assert f'week={(monday - timedelta(days=7)).date().isoformat()}' in html
    later = client.get(f"/console/programmes?week={(monday + timedelta(days=7)).date().isoformat()}&area=27694",
                       headers=HTML).get_data(as_text=True)
    assert later.count('class="slot"') == 10, "the next week: two slots each weekday, no exception"
    admin = _client(hub, "admin-80", ["administrator"], ["80"])
    html = admin.get(f"/console/programmes?week={monday.date().isoformat()}", headers=HTML).get_data(as_text=True)
    assert "Bản tin xa" in html and html.count('class="slot"') == 11


def test_the_as_run_of_a_day_shows_what_played_and_what_never_did(hub: Runtime) -> None:
    add(hub, "played-1", "refuse-2", area="27694")
    add(hub, "far-3", area="28099")
    with hub.db.session() as s:
        c = Content(id=uuid.uuid4().hex, title="Chương trình sáng", kind="audio_file", created_by="t",
                    media={"uri": "http://127.0.0.1:9/sang.mp3", "duration_s": 600}, created_at=utcnow())
        s.add(c)
    cmd = send(hub, {"verb": "play", "content_id": c.id, "target": {"areas": ["27694", "28099"]},
                     "expires_at": (utcnow() + timedelta(hours=1)).isoformat(),
                     "idempotency_key": "programme:sang:1"}, Actor(name="scheduler:programmes")).command
    work(hub)
    ingest = Ingest(hub, vendors=[])
    ingest.sink.ack("loopback", "played-1", Ack(cmd.id, True, detail={"activity": "playing"}))
    ingest.flush()
    client = _client(hub, "xem-phuong-1", ["viewer"], ["27694"])
    today = utcnow().astimezone(LOCAL_TZ).date()
    html = client.get(f"/console/as-run?day={today.isoformat()}", headers=HTML).get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-device="([^"]+)" data-outcome="([^"]+)"', html))
    assert rows == {"PLAYED-1": "playing", "REFUSE-2": "not_played"}, "only the reader's devices"
    page = _text(html)
    assert "Chương trình sáng" in page and "đang phát" in page and "không phát" in page
    assert "gửi không thành công" in page, "why it never played: its delivery failed"
    one = client.get(f"/console/as-run?day={today.isoformat()}&device=PLAYED-1", headers=HTML).get_data(as_text=True)
    assert re.findall(r'<tr data-device="([^"]+)"', one) == ["PLAYED-1"]
    assert client.get("/console/as-run?device=FAR-3", headers=HTML).status_code == 404
    before = client.get(f"/console/as-run?day={(today - timedelta(days=1)).isoformat()}", headers=HTML)
    assert "Không có gì được lên lịch hay phát trong ngày này." in before.get_data(as_text=True)
