"""The registered simulator: a real snapserver on the config's control port, a real snapclient
per device, and nothing left running after stop()."""
from __future__ import annotations

import os
import socket

from hub.plugins import Plugins
from hub.vendor import DeviceRef, Outcome

from hub_snapcast.adapter import SnapcastAdapter
from hub_snapcast.lab import free_port
from snapcast_helpers import envelope, outgoing


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_factory_runs_snapserver_and_a_snapclient_per_device(snapcast_installed: None) -> None:
    plugins = Plugins()
    plugins.load_entry_points(only={"snapcast"})
    factory = plugins.simulators()["snapcast"]
    config = {"control_port": free_port(), "streams": {"bulletin": "bulletin", "idle": "quiet"},
              "relay_streams": {"http://radio.example/vov1": "vov1"}}
    devices = [DeviceRef(id=f"D{i}", address=f"sim-{i}", kind="speaker") for i in range(3)]
    fleet = factory(config, devices)
    fleet.start()
    try:
        server = fleet.lab.status()
        connected = {c["id"] for g in server["groups"] for c in g["clients"] if c["connected"]}
        assert connected == {"sim-0", "sim-1", "sim-2"}
        assert {s["id"] for s in server["streams"]} == {"quiet", "bulletin", "vov1"}
        assert {g["stream_id"] for g in server["groups"]} == {"quiet"}  # new clients start idle

        adapter = SnapcastAdapter(config)
        adapter.open()
        try:
            results = adapter.send([outgoing(d.address, envelope("relay_start", {"url": "http://radio.example/vov1"}))
                                    for d in devices])
            assert [r.outcome for r in results] == [Outcome.ACKED] * 3
        finally:
            adapter.close()
        pids = fleet.lab.pids()
        assert len(pids) == 4
    finally:
        fleet.stop()
    assert all(_gone(p) for p in pids)
    with socket.socket() as s:  # the control port is free again
        s.bind(("127.0.0.1", config["control_port"]))
