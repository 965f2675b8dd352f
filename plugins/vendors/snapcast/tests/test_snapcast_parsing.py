"""Snapserver client objects -> DeviceStatus; garbage -> StatusParseError."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from hub.vendor import StatusParseError

from hub_snapcast.adapter import SnapcastAdapter
from hub_snapcast.parsing import Routing, client_status, parse_status

# As snapserver 0.26 reports a client in Server.GetStatus (captured from the lab).
CLIENT = {"config": {"instance": 1, "latency": 0, "name": "", "volume": {"muted": False, "percent": 35}},
          "connected": True,
          "host": {"arch": "x86_64", "ip": "127.0.0.1", "mac": "02:fc:00:00:00:01", "name": "vm",
                   "os": "Debian GNU/Linux 12 (bookworm)"},
          "id": "spk-a", "lastSeen": {"sec": 1700000000, "usec": 500000},
          "snapclient": {"name": "Snapclient", "protocolVersion": 2, "version": "0.26.0"}}
ROUTING = Routing({"bulletin": "bulletin", "idle": "default"}, {"http://radio.example/vov1": "vov1"})


def _client(**changes: object) -> dict:
    c = json.loads(json.dumps(CLIENT))
    c.update(changes)
    return c


def test_a_connected_client() -> None:
    st = SnapcastAdapter({}).parse_status("spk-a", json.dumps(CLIENT).encode())
    assert st["online"] is True and st["volume"] == 35 and st["firmware"] == "0.26.0"
    assert st["activity"] == "unknown" and st["source"] is None  # a bare client says nothing of its group
    assert (datetime.now(timezone.utc) - st["reported_at"]).total_seconds() < 60


def test_a_disconnected_client_reports_when_it_was_last_seen() -> None:
    st = parse_status("spk-a", json.dumps(_client(connected=False)).encode())
    assert st["online"] is False
    assert st["reported_at"] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=timezone.utc)


def test_a_muted_client_is_idle() -> None:
    c = _client()
    c["config"]["volume"]["muted"] = True
    assert parse_status("spk-a", json.dumps(c).encode())["activity"] == "idle"


@pytest.mark.parametrize(("payload", "why"), [
    (b"\xff\xfe not json", "not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"connected": true}', "describes client None"),
    (json.dumps(_client(id="spk-b")).encode(), "describes client 'spk-b'"),
    (json.dumps(_client(connected="yes")).encode(), "connected must be true or false"),
    (json.dumps(_client(config={})).encode(), "config.volume must be an object"),
    (json.dumps(_client(config={"volume": {"percent": 150}})).encode(), "percent must be an integer 0-100"),
    (json.dumps(_client(config={"volume": {"percent": True}})).encode(), "percent must be an integer 0-100"),
    (json.dumps(_client(config={"volume": {"percent": 5, "muted": "no"}})).encode(), "muted must be true or false"),
])
def test_garbage_is_a_status_parse_error(payload: bytes, why: str) -> None:
    with pytest.raises(StatusParseError, match="status of snapclient spk-a") as err:
        parse_status("spk-a", payload)
    assert why in str(err.value)


def _in(stream_id: str, stream_status: str = "playing", muted: bool = False) -> dict:
    group = {"id": "g1", "muted": muted, "stream_id": stream_id, "clients": ["spk-a"]}
    return client_status("spk-a", _client(), group, {"id": stream_id, "status": stream_status}, ROUTING)


def test_activity_and_source_follow_the_group_and_its_stream() -> None:
    assert (_in("bulletin")["activity"], _in("bulletin")["source"]) == ("playing", "snapcast:bulletin")
    assert (_in("vov1")["activity"], _in("vov1")["source"]) == ("relaying", "http://radio.example/vov1")
    assert (_in("default")["activity"], _in("default")["source"]) == ("idle", None)
    assert _in("bulletin", muted=True)["activity"] == "idle"
    # Tuned in, but nothing feeds the stream: silent, so not "playing"; the source says where.
    silent = _in("bulletin", stream_status="idle")
    assert (silent["activity"], silent["source"]) == ("idle", "snapcast:bulletin")
    assert _in("somebody-elses")["source"] == "snapcast:somebody-elses"


def test_routing_targets() -> None:
    assert ROUTING.target("snapcast:bulletin") == ("bulletin", None)
    assert ROUTING.target("snapcast://bulletin") == ("bulletin", None)
    assert ROUTING.target("http://radio.example/vov1") == ("vov1", "http://radio.example/vov1")
    assert "no snapserver stream has the role 'emergency'" in str(ROUTING.target("snapcast:emergency"))
    assert "is not allowed" in str(ROUTING.target("http://elsewhere.example/x"))
