"""Stations a province relays and relay sessions through the API and the command line, without
Icecast running: what is refused and why, who sees what, and what each call dispatches."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.access.actors import Actor
from hub.api import create_app
from hub.broadcast.relay.stations import StationError, load_stations
from hub.config import Settings
from hub.runtime import Runtime
from hub.store.models import Command

ADMIN = Actor(name="tinh-admin", roles=frozenset({"administrator"}))
OWN, OTHER_DISTRICT = "27694", "807"  # tests/data/legacy-three-level.yaml


def write(path: Path, body: str) -> str:
    path.write_text(body, encoding="utf-8")
    return str(path)


def stations_of(tmp_path: Path, entry: str, **settings: object) -> dict:
    s = Settings(**settings)  # type: ignore[arg-type]
    s.stations_file = write(tmp_path / "stations.yaml", f"stations:\n  - {entry}\n")
    return load_stations(s)


def test_a_station_needs_a_web_url_that_is_not_one_of_the_hubs_own_services(tmp_path: Path) -> None:
    ok = stations_of(tmp_path, "{id: vov1, name: VOV1, url: 'http://radio.example.vn:8000/vov1', areas: [80]}")
    assert ok["vov1"].to_dict() == {"id": "vov1", "name": "VOV1", "url": "http://radio.example.vn:8000/vov1",
                                    "areas": ["80"]}
    refused = {
        "{id: a, name: A, url: 'file:///etc/passwd'}": "url: expected http(s)",
        "{id: a, name: A, url: 'concat:/etc/passwd'}": "url: expected http(s)",
        "{id: a, name: A, url: 'http://127.0.0.1:6379/'}": "the hub's own Redis",
        "{id: a, name: A, url: 'http://localhost:8080/api/devices'}": "the hub's own API",
        "{id: a, name: A, url: 'http://127.0.0.1:8000/relay-x'}": "the hub's own Icecast",
        "{id: A!, name: A, url: 'http://radio.example.vn/'}": "id: expected lower-case",
        "{id: a, name: A, url: 'http://radio.example.vn/', colour: red}": "colour: unknown key",
    }
    for entry, words in refused.items():
        with pytest.raises(StationError) as err:
            stations_of(tmp_path, entry)
        assert words in str(err.value) and "stations.yaml: station" in str(err.value), (entry, err.value)
    twice = Settings(stations_file=write(tmp_path / "twice.yaml", "stations:\n  - {id: a, name: A, url: 'http://r.vn/'}"
                                                                   "\n  - {id: a, name: B, url: 'http://r.vn/b'}\n"))
    with pytest.raises(StationError, match="station a: id: given twice"):
        load_stations(twice)
    assert load_stations(Settings()) == {}  # no stations_file: no stations, not an error


@pytest.fixture
def relay_rt(rt: Runtime, legacy_areas: None, vendors: dict[str, str], tmp_path: Path) -> Runtime:
    from hub.fleet.registry import upsert_device

    with rt.db.session() as s:
        for did, area in (("own-1", OWN), ("far-1", OTHER_DISTRICT)):
            upsert_device(s, rt.plugins, {"id": did, "vendor": vendors["speaker"], "kind": "speaker",
                                          "area_code": area, "address": f"a-{did}", "tags": []})
    rt.settings.stations_file = write(tmp_path / "stations.yaml", f"""stations:
  - {{id: tinh, name: Đài tỉnh, url: 'http://radio.example.vn/tinh'}}
  - {{id: xa-khac, name: Đài huyện khác, url: 'http://radio.example.vn/khac', areas: ['{OTHER_DISTRICT}']}}
""")
    return rt


def client(rt: Runtime, who: Actor):  # noqa: ANN201
    return create_app(rt, authenticator=lambda _req: who).test_client()


def test_stations_are_offered_by_area_in_the_api_and_all_listed_by_the_cli(relay_rt: Runtime) -> None:
    commune = Actor(name="xa-op", roles=frozenset({"operator"}), areas=frozenset({OWN}), user_id=None)
    assert [s["id"] for s in client(relay_rt, ADMIN).get("/api/stations").get_json()] == ["tinh", "xa-khac"]
    assert [s["id"] for s in client(relay_rt, commune).get("/api/stations").get_json()] == ["tinh"]
    r = client(relay_rt, commune).post("/api/relays", json={"station_id": "xa-khac", "target": {"areas": [OWN]}})
    assert r.status_code == 422 and "unknown station xa-khac" in r.get_json()["message"]

    from hub.cli.main import cli
    from hub.runtime import set_runtime

    set_runtime(relay_rt)
    try:
        out = CliRunner().invoke(cli, ["stations", "list"])
    finally:
        set_runtime(None)
    assert out.exit_code == 0, out.output
    assert "tinh" in out.output and "xa-khac" in out.output and "areas 807" in out.output


def test_a_relay_names_one_source_and_a_target_the_caller_may_reach(relay_rt: Runtime) -> None:
    commune = Actor(name="xa-op", roles=frozenset({"operator"}), areas=frozenset({OWN}))
    c = client(relay_rt, commune)
    r = c.post("/api/relays", json={"station_id": "tinh", "live": True, "target": {"areas": [OWN]}})
    assert r.status_code == 422 and "exactly one source" in r.get_json()["message"]
    r = c.post("/api/relays", json={"station_id": "tinh", "target": {"areas": [OTHER_DISTRICT]}})
    assert r.status_code == 403, r.get_json()
    r = c.post("/api/relays", json={"station_id": "tinh", "target": {"nothing": 1}})
    assert r.status_code == 422 and "target" in r.get_json()["message"], r.get_json()
    viewer = Actor(name="xa-viewer", roles=frozenset({"viewer"}), areas=frozenset({OWN}))
    assert client(relay_rt, viewer).post("/api/relays", json={"live": True, "target": {"areas": [OWN]}}).status_code \
        == 403
    with relay_rt.db.session() as s:
        assert s.query(Command).count() == 0  # nothing went out for any refusal


def test_a_live_session_gives_its_creator_the_source_and_stops_once(relay_rt: Runtime) -> None:
    commune = Actor(name="xa-op", roles=frozenset({"operator"}), areas=frozenset({OWN}))
    c = client(relay_rt, commune)
    r = c.post("/api/relays", json={"live": True, "target": {"areas": [OWN]}, "priority": "priority"})
    assert r.status_code == 201, r.get_json()
    live = r.get_json()
    assert live["kind"] == "live" and live["state"] == "starting" and live["mount"].startswith("/relay-")
    assert live["listen_url"] == f"http://127.0.0.1:8000{live['mount']}"
    source = live["source"]
    assert source["url"] == f"icecast://source:{source['password']}@127.0.0.1:8000{live['mount']}"
    with relay_rt.db.session() as s:
        cmd = s.get(Command, live["start_command_id"])
        assert (cmd.verb, cmd.params, cmd.priority, cmd.total) == ("relay_start", {"url": live["listen_url"]},
                                                                   "priority", 1)
    # the password is derived, never stored, and shown to its creator only
    assert "source" in c.get(f"/api/relays/{live['id']}").get_json()
    assert "source" not in client(relay_rt, ADMIN).get(f"/api/relays/{live['id']}").get_json()
    far = Actor(name="far-op", roles=frozenset({"operator"}), areas=frozenset({OTHER_DISTRICT}))
    assert client(relay_rt, far).get(f"/api/relays/{live['id']}").status_code == 404
    assert client(relay_rt, far).get("/api/relays").get_json() == []

    r = c.delete(f"/api/relays/{live['id']}")
    assert r.status_code == 200, r.get_json()
    stopped = r.get_json()
    assert (stopped["desired"], stopped["state"], stopped["stopped_by"]) == ("stopped", "stopping", "xa-op")
    with relay_rt.db.session() as s:
        assert s.get(Command, stopped["stop_command_id"]).verb == "relay_stop"
    assert c.delete(f"/api/relays/{live['id']}").status_code == 409
