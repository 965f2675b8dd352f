"""End to end through a hub app served on a loopback port, the real mqtt_speaker plugin and
Mosquitto: a simulated speaker fetches published audio by its signed URL with range requests
before it acks; a speaker handed an altered URL is refused the audio and says so (nack), so the
hub never shows acked for a bulletin nobody heard."""
from __future__ import annotations

import io
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from hub.access.actors import Actor
from hub.api import create_app
from hub.plugins import Plugins
from hub.testing import HubHarness

from hub_mqtt_speaker.device import SimDevice
from hub_mqtt_speaker.fetch import FIRST_BYTES
from hub_mqtt_speaker.simulator import Fleet
from tests.support.media import make_audio, serve
from tests.support.services import MQTT_HOST, MQTT_PORT

EDITOR = Actor(name="editor-1", roles=frozenset({"editor"}))


def test_speaker_fetches_audio_by_signed_url_with_range_then_acks(tmp_path: Path, services: None) -> None:
    prefix = f"hubtest/media-{uuid.uuid4().hex[:8]}"
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker", "directory"})
    config = {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix}
    with HubHarness(tmp_path, "mqtt_speaker", config, plugins=plugins, listen=False) as hub:
        hub.rt.settings.media_dir = str(tmp_path / "media")
        app = create_app(hub.rt, authenticator=lambda _req: EDITOR)
        fleet = Fleet(MQTT_HOST, MQTT_PORT, prefix, [SimDevice("spk1", fetch_media=True),
                                                     SimDevice("spk2", fetch_media=True)], status_interval=5)
        with serve(app) as base:
            hub.rt.settings.public_base_url = base  # what devices reach the hub by
            fleet.start(timeout=30)
            try:
                hub.start_ingest()
                hub.add_device("S1", "spk1")
                hub.add_device("S2", "spk2")
                up = app.test_client().post("/api/media", data={"file": (io.BytesIO(make_audio(6.0)), "bao.wav")},
                                            content_type="multipart/form-data")
                assert up.status_code == 201, up.get_json()
                media = up.get_json()
                stored = hub.rt.media_store().get(media["key"]).data
                assert len(stored) > FIRST_BYTES  # so the player needs its second range
                cid = hub.add_content(title="Bản tin phòng chống bão", kind="audio_file",
                                      media={"key": media["key"], "sha256": media["sha256"],
                                             "duration_s": media["duration_s"]})

                played = hub.send("play", ["S1"], content_id=cid)
                assert hub.wait(played.command.id, timeout=20)["S1"].state == "acked"
                got = fleet.device("spk1").command(played.command.id).fetch
                assert got is not None and got.ok, got
                assert urlsplit(got.url).netloc == urlsplit(base).netloc and "sig=" in got.url
                assert got.statuses == [206, 206] and got.ranges == [f"bytes=0-{FIRST_BYTES - 1}",
                                                                      f"bytes={FIRST_BYTES}-"]
                assert got.data == stored and got.sha256 == media["sha256"]

                q = urlsplit(got.url)
                sig = q.query.split("sig=")[1]
                altered = got.url.replace(f"sig={sig}", f"sig={sig[::-1]}")
                bad = hub.add_content(title="Bản tin bị sửa", kind="audio_file", media={"uri": altered})
                refused = hub.send("play", ["S2"], content_id=bad)
                outcome = hub.wait(refused.command.id, timeout=20)["S2"]
                assert outcome.state == "failed" and "403" in (outcome.reason or ""), outcome
                seen = fleet.device("spk2").command(refused.command.id)
                assert seen.fetch is not None and seen.fetch.statuses == [403] and seen.ok is False
                assert fleet.device("spk2").activity == "idle"  # it played nothing
            finally:
                fleet.stop(timeout=10, clear_retained=True)
