"""Relay sessions in the console (Flask test client, a real session, no Icecast needed): the sessions
a reader may see, starting one from the stations offered to its areas, and stopping it — each through
hub.broadcast.relay.sessions with the dispatcher's role and area checks."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.api import create_app
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.store.relay_tables import RelaySession
from tests.support.accounts import make_user
from tests.support.console import HTML, PASSWORD, client_sign_in

OUTSIDE = "Lệnh bị từ chối: lựa chọn của bạn gồm thiết bị hoặc địa bàn nằm ngoài địa bàn bạn được giao."


@pytest.fixture
def relay_rt(rt: Runtime, legacy_areas: None, vendors: dict[str, str], tmp_path: Path) -> Runtime:
    with rt.db.session() as s:
        for did, area in (("own-1", "27694"), ("far-1", "807")):
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendors["speaker"], "kind": "speaker",
                                          "area_code": area, "address": f"a-{did}", "tags": []})
    stations = tmp_path / "stations.yaml"
    stations.write_text("""stations:
  - {id: tinh, name: Đài tỉnh, url: 'http://radio.example.vn/tinh'}
  - {id: xa-khac, name: Đài huyện khác, url: 'http://radio.example.vn/khac', areas: ['807']}
""", encoding="utf-8")
    rt.settings.stations_file = str(stations)
    return rt


def _signed_in(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> tuple[Any, str]:
    make_user(rt, name, roles, areas, password=PASSWORD)
    client = create_app(rt).test_client()
    return client, client_sign_in(client, name)


def _sessions(rt: Runtime) -> list[RelaySession]:
    with rt.db.session() as s:
        return list(s.scalars(select(RelaySession)))


def test_an_operator_starts_a_station_to_their_commune_and_stops_it(relay_rt: Runtime) -> None:
    client, csrf = _signed_in(relay_rt, "op-27694", ["operator"], ["27694"])
    page = client.get("/console/relay", headers=HTML).get_data(as_text=True)
    assert "Đài tỉnh" in page and "Đài huyện khác" not in page, "only the stations offered to their areas"
    assert "Chưa có phiên tiếp sóng nào." in page
    r = client.post("/console/relay/start", headers=HTML,
                    data={"csrf_token": csrf, "station_id": "tinh", "areas": ["27694"]})
    assert r.status_code == 302 and re.match(r"/console/commands/[0-9a-f]{32}$", r.headers["Location"])
    [row] = _sessions(relay_rt)
    assert (row.station_id, row.desired, row.start_command_id) == ("tinh", "running", r.headers["Location"][-32:])
    progress = client.get(r.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "bắt đầu tiếp sóng" in progress and re.findall(r"data-device=\"([^\"]+)\"", progress) == ["own-1"]
    page = client.get("/console/relay", headers=HTML).get_data(as_text=True)
    assert f'data-relay="{row.id}"' in page and f'data-stop="{row.id}"' in page
    r = client.post(f"/console/relay/{row.id}/stop", headers=HTML, data={"csrf_token": csrf})
    assert r.status_code == 302
    [row] = _sessions(relay_rt)
    assert row.desired == "stopped" and row.stop_command_id == r.headers["Location"][-32:]
    again = client.post(f"/console/relay/{row.id}/stop", headers=HTML, data={"csrf_token": csrf})
    assert again.status_code == 409 and "Phiên tiếp sóng này đã được dừng trước đó." in again.get_data(as_text=True)


def test_relays_beyond_the_operators_areas_or_roles_are_refused(relay_rt: Runtime) -> None:
    client, csrf = _signed_in(relay_rt, "op-1", ["operator"], ["27694"])
    r = client.post("/console/relay/start", headers=HTML, data={"csrf_token": csrf, "station_id": "tinh",
                                                                "areas": ["807"]})
    assert r.status_code == 403 and OUTSIDE in r.get_data(as_text=True)
    r = client.post("/console/relay/start", headers=HTML, data={"csrf_token": csrf, "station_id": "xa-khac",
                                                                "areas": ["27694"]})
    assert r.status_code == 422 and "Hãy chọn một đài trong danh sách." in r.get_data(as_text=True)
    r = client.post("/console/relay/start", headers=HTML, data={"csrf_token": csrf, "station_id": "tinh"})
    assert r.status_code == 422 and "Hãy chọn ít nhất một địa bàn để tiếp sóng." in r.get_data(as_text=True)
    r = client.post("/console/relay/start", headers=HTML, data={"station_id": "tinh", "areas": ["27694"]})
    assert r.status_code == 403, "no CSRF token"
    assert _sessions(relay_rt) == []
    viewer, v_csrf = _signed_in(relay_rt, "xem-1", ["viewer"], ["27694"])
    assert 'id="relay-form"' not in viewer.get("/console/relay", headers=HTML).get_data(as_text=True)
    r = viewer.post("/console/relay/start", headers=HTML, data={"csrf_token": v_csrf, "station_id": "tinh",
                                                                "areas": ["27694"]})
    assert r.status_code == 403 and _sessions(relay_rt) == []
    client.post("/console/relay/start", headers=HTML, data={"csrf_token": csrf, "station_id": "tinh",
                                                            "areas": ["27694"]})
    [row] = _sessions(relay_rt)
    far, f_csrf = _signed_in(relay_rt, "op-807", ["operator"], ["807"])
    assert f'data-relay="{row.id}"' not in far.get("/console/relay", headers=HTML).get_data(as_text=True)
    assert far.post(f"/console/relay/{row.id}/stop", headers=HTML, data={"csrf_token": f_csrf}).status_code == 404
    assert viewer.post(f"/console/relay/{row.id}/stop", headers=HTML, data={"csrf_token": v_csrf}).status_code == 403
    with relay_rt.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RelaySession).where(RelaySession.desired == "running")) == 1
