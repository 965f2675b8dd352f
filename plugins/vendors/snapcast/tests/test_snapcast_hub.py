"""End to end through a whole hub (real dispatch, rq job with retries, ingest) against a real
snapserver with real snapclients."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.testing import HubHarness

from hub_snapcast.lab import binary
from snapcast_helpers import LiveAudio, harness

CLIENTS = ["spk-a", "spk-b", "spk-c"]


def _devices(hub: HubHarness, clients: list[str] = CLIENTS) -> list[str]:
    return [hub.add_device(f"S-{c}", c) for c in clients]


def test_set_volume_acked_read_back_by_snapserver_and_stored_through_the_listener(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS)
    with harness(tmp_path, lab) as hub:
        devices = _devices(hub)
        sub = hub.send("set_volume", devices, {"level": 35})
        got = hub.wait(sub.command.id, timeout=20)
        assert {d: o.state for d, o in got.items()} == {d: "acked" for d in devices}, got
        assert all(o.result == {"volume": 35, "muted": False} and o.attempts == 1 for o in got.values())
        clients = lab.clients_by_id()
        assert [clients[c]["config"]["volume"]["percent"] for c in CLIENTS] == [35, 35, 35]
        for c, d in zip(CLIENTS, devices, strict=True):
            # The worker's connection changed it; the listener heard snapserver say so.
            st = hub.wait_status(d, lambda s: s["volume"] == 35, timeout=15)
            assert st is not None and st["volume"] == 35 and st["online"] is True, st
            assert st["firmware"] == clients[c]["snapclient"]["version"]


def test_play_and_stop_switch_the_group_stream(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS)
    group = lab.group_of("spk-a")["id"]
    lab.rpc("Group.SetMute", {"id": group, "mute": True})  # play must unmute what it tunes in
    with harness(tmp_path, lab) as hub:
        devices = _devices(hub)
        channel = hub.add_content(title="Kênh bản tin xã", kind="stream", media={"uri": "snapcast:bulletin"})
        sub = hub.send("play", devices[:1], content_id=channel)
        [outcome] = hub.wait(sub.command.id, timeout=20).values()
        assert outcome.state == "acked", outcome
        assert outcome.result == {"group": group, "stream_id": "bulletin", "muted": False}
        assert lab.group_of("spk-a")["stream_id"] == "bulletin" and lab.group_of("spk-a")["muted"] is False
        assert lab.group_of("spk-b")["stream_id"] == "default"  # a group of its own, untouched

        # The bulletin itself is fed by whoever writes the stream's pipe: until then it is silent.
        feeder = lab.feed("bulletin", seconds=6)
        st = hub.wait_status(devices[0], lambda s: s["activity"] == "playing", timeout=15)
        assert st is not None and st["activity"] == "playing" and st["source"] == "snapcast:bulletin", st

        sub = hub.send("stop", devices[:1])
        [outcome] = hub.wait(sub.command.id, timeout=20).values()
        assert outcome.state == "acked" and outcome.result == {"group": group, "stream_id": "default"}, outcome
        assert lab.group_of("spk-a")["stream_id"] == "default"
        st = hub.wait_status(devices[0], lambda s: s["activity"] == "idle", timeout=15)
        assert st is not None and st["activity"] == "idle" and st["source"] is None, st
        feeder.join(10)


def test_play_switches_the_whole_group_and_says_so(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS)
    group = lab.group_of("spk-a")["id"]
    lab.rpc("Group.SetClients", {"id": group, "clients": ["spk-a", "spk-b"]})
    with harness(tmp_path, lab) as hub:
        devices = _devices(hub)
        channel = hub.add_content(title="Bulletin channel", kind="stream", media={"uri": "snapcast:bulletin"})
        sub = hub.send("play", devices[:2], content_id=channel)
        got = hub.wait(sub.command.id, timeout=20)
        assert got["S-spk-a"].result["also_switched"] == ["spk-b"]
        assert got["S-spk-b"].result["also_switched"] == ["spk-a"]
        assert lab.group_of("spk-b")["stream_id"] == "bulletin" and lab.group_of("spk-c")["stream_id"] == "default"


def test_unknown_client_fails_clearly_while_the_others_are_acked(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS[:2])
    with harness(tmp_path, lab) as hub:
        devices = _devices(hub, CLIENTS[:2]) + [hub.add_device("S-ghost", "ghost-7f3a")]
        sub = hub.send("set_volume", devices, {"level": 20})
        got = hub.wait(sub.command.id, timeout=20)
        assert got["S-spk-a"].state == got["S-spk-b"].state == "acked"
        ghost = got["S-ghost"]
        assert ghost.state == "failed" and ghost.reason == "snapserver knows no client ghost-7f3a"
        assert ghost.attempts == 1  # not transient: retrying cannot make snapserver know it


def test_play_needs_the_url_capability_it_does_not_declare(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS[:1])
    with harness(tmp_path, lab) as hub:
        [device] = _devices(hub, CLIENTS[:1])
        clip = hub.add_content(title="Bản tin", kind="audio_file", media={"uri": "http://127.0.0.1:9/a.mp3"})
        sub = hub.send("play", [device], content_id=clip)
        [outcome] = hub.wait(sub.command.id).values()
        assert outcome.state == "unsupported" and "audio.play_url" in outcome.reason


@pytest.mark.skipif(binary("curl") is None, reason="the test relay's decoder is curl")
def test_relay_start_and_stop_through_a_configured_relay_stream(tmp_path: Path, make_lab) -> None:
    radio = LiveAudio()
    try:
        # What a province's snapserver host runs for a relay: a process:// source fetching the
        # URL (ffmpeg for a real radio; curl here because the test stream is already PCM).
        source = f"process://{binary('curl')}?name=radio&params=-sS%20--no-buffer%20{radio.url}"
        lab = make_lab(CLIENTS[:2], extra_sources=[source])
        assert lab.wait(lambda: lab.stream_status("radio") == "playing", timeout=15)
        with harness(tmp_path, lab, relay_streams={radio.url: "radio"}) as hub:
            devices = _devices(hub, CLIENTS[:2])
            sub = hub.send("relay_start", devices[:1], {"url": radio.url})
            [outcome] = hub.wait(sub.command.id, timeout=20).values()
            assert outcome.state == "acked", outcome
            assert outcome.result["stream_id"] == "radio" and outcome.result["url"] == radio.url
            assert lab.group_of("spk-a")["stream_id"] == "radio"
            st = hub.wait_status(devices[0], lambda s: s["activity"] == "relaying", timeout=15)
            assert st is not None and st["source"] == radio.url, st

            other = "http://127.0.0.1:9/not-configured.mp3"
            sub = hub.send("relay_start", devices[1:], {"url": other})
            [refused] = hub.wait(sub.command.id, timeout=20).values()
            assert refused.state == "failed" and refused.attempts == 1
            assert refused.reason.startswith(f"relaying {other} is not allowed")

            sub = hub.send("relay_stop", devices)
            got = hub.wait(sub.command.id, timeout=20)
            assert got["S-spk-a"].state == "acked" and got["S-spk-a"].result["stream_id"] == "default"
            assert got["S-spk-b"].result == {"group": lab.group_of("spk-b")["id"], "stream_id": "default",
                                              "changed": False}  # was not relaying: nothing to stop
            assert lab.group_of("spk-a")["stream_id"] == "default"
            st = hub.wait_status(devices[0], lambda s: s["activity"] == "idle", timeout=15)
            assert st is not None and st["source"] is None
    finally:
        radio.close()


def test_killed_snapclient_goes_offline_through_the_notification(tmp_path: Path, make_lab) -> None:
    lab = make_lab(CLIENTS)
    # A poll far beyond the waits below: offline can only arrive through Client.OnDisconnect
    # (the listener's first full status went out before these devices were registered).
    with harness(tmp_path, lab, poll_interval_s=600) as hub:
        devices = _devices(hub)
        lab.kill_client("spk-c")
        st = hub.wait_status(devices[2], lambda s: s["online"] is False, timeout=15)
        assert st is not None and st["online"] is False, st

        sub = hub.send("set_volume", devices, {"level": 50})
        got = hub.wait(sub.command.id, timeout=20)
        assert got["S-spk-a"].state == got["S-spk-b"].state == "acked"
        gone = got["S-spk-c"]
        assert gone.state == "failed" and gone.attempts == 3
        assert gone.reason == "gave up after 3 attempts: snapclient spk-c is not connected to snapserver"

        lab.start_client("spk-c")  # power back: it reconnects and the hub hears it
        st = hub.wait_status(devices[2], lambda s: s["online"] is True, timeout=20)
        assert st is not None and st["online"] is True, st
