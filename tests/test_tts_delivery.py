"""A text bulletin reaches speakers as audio, end to end: published through the API with no
internet, it is spoken by the offline voice (the content records that gTTS failed first), and
simulated MQTT speakers fetch that audio by signed URL with range requests before they ack; its
loudness is on target. With a gTTS stand-in on loopback, gTTS speaks it and a second request to
speak it is served from the cache without asking the service again."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from hub.access.actors import Actor
from hub.api import create_app
from hub.plugins import Plugins
from hub.testing import HubHarness
from tests.support.media import closed_port, ebur128_lufs, serve
from tests.support.services import MQTT_HOST, MQTT_PORT

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("ffmpeg")),
                                reason="espeak-ng and ffmpeg are needed (scripts/services.sh installs them)")
hub_gtts = pytest.importorskip("hub_gtts")
from hub_gtts.standin import StandIn, make_mp3  # noqa: E402 - after the skip
from hub_mqtt_speaker.device import SimDevice  # noqa: E402
from hub_mqtt_speaker.simulator import Fleet  # noqa: E402

ADMIN = Actor(name="tinh-admin", roles=frozenset({"administrator"}))
BULLETIN = ("UBND xã Tân Phú thông báo: hồi 7h30 ngày 12/10/2026, bão số 3 đổ bộ với sức gió 90 km/h. "
            "Bà con khẩn trương neo đậu tàu thuyền, gia cố nhà cửa.")




def harness(tmp_path: Path, prefix: str, gtts_url: str) -> HubHarness:
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker", "directory", "espeak_ng", "gtts"})
    h = HubHarness(tmp_path, "mqtt_speaker", {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix},
                   plugins=plugins, listen=False)
    h.rt.settings.speech_providers = ["gtts", "espeak_ng"]  # the product's default chain
    h.rt.settings.plugins["gtts"] = {"service_url": gtts_url, "timeout_s": 3}
    return h


def publish(client, body: str, priority: str = "priority") -> dict:  # noqa: ANN001
    r = client.post("/api/contents", json={"title": "Bão số 3", "kind": "tts_text", "language": "vi",
                                           "body": body, "priority": priority, "publish": True})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_with_no_internet_speakers_fetch_vietnamese_audio_spoken_offline(tmp_path: Path, services: None) -> None:
    prefix = f"hubtest/tts-{uuid.uuid4().hex[:8]}"
    with harness(tmp_path, prefix, f"http://127.0.0.1:{closed_port()}/batchexecute") as hub:
        app = create_app(hub.rt, authenticator=lambda _req: ADMIN)
        fleet = Fleet(MQTT_HOST, MQTT_PORT, prefix, [SimDevice("spk1", fetch_media=True),
                                                     SimDevice("spk2", fetch_media=True)], status_interval=5)
        with serve(app) as base:
            hub.rt.settings.public_base_url = base
            fleet.start(timeout=30)
            try:
                hub.start_ingest()
                hub.add_device("S1", "spk1")
                hub.add_device("S2", "spk2")
                content = publish(app.test_client(), BULLETIN)
                speech, media = content["speech"], content["media"]
                assert speech["provider"] == "espeak_ng", speech
                assert [f["provider"] for f in speech["fallback_from"]] == ["gtts"], speech  # recorded on the content
                assert media["key"].endswith(".mp3") and media["duration_s"] > 3
                assert "uri" not in media  # devices get a signed URL at send time, never the raw text

                played = hub.send("play", ["S1", "S2"], content_id=content["id"])
                outcome = hub.wait(played.command.id, timeout=30)
                assert {o.state for o in outcome.values()} == {"acked"}, outcome
                stored = hub.rt.media_store().get(media["key"]).data
                for name in ("spk1", "spk2"):
                    got = fleet.device(name).command(played.command.id)
                    assert got.fetch is not None and got.fetch.ok and got.fetch.statuses[0] == 206, got.fetch
                    assert got.fetch.data == stored and got.fetch.sha256 == media["sha256"]
                    assert "sig=" in got.fetch.url and got.content["media_uri"] == got.fetch.url
                assert abs(ebur128_lufs(stored) - hub.rt.settings.speech_loudness_lufs) <= 1.0
            finally:
                fleet.stop(timeout=10, clear_retained=True)


def test_a_gtts_stand_in_on_loopback_speaks_and_the_audio_is_cached(tmp_path: Path, services: None) -> None:
    with StandIn(make_mp3(3.0)) as standin:
        with harness(tmp_path, f"hubtest/tts-{uuid.uuid4().hex[:8]}", standin.url) as hub:
            client = create_app(hub.rt, authenticator=lambda _req: ADMIN).test_client()
            content = publish(client, "Thông báo lịch tiêm chủng tại trạm y tế xã.")
            assert content["speech"]["provider"] == "gtts" and not content["speech"]["fallback_from"]
            asked = len(standin.texts)
            assert asked >= 1
            again = client.post(f"/api/contents/{content['id']}/speak", json={})
            assert again.status_code == 200, again.get_json()
            assert again.get_json()["speech"]["cached"] is True and again.get_json()["media"] == content["media"]
            same_text = publish(client, "Thông báo lịch tiêm chủng tại trạm y tế xã.")
            assert same_text["media"]["key"] == content["media"]["key"]
            assert len(standin.texts) == asked  # the service was not asked again
            stored = hub.rt.media_store().get(content["media"]["key"]).data
            assert abs(ebur128_lufs(stored) - hub.rt.settings.speech_loudness_lufs) <= 1.0
            # an emergency is spoken at once by the offline voice, even while the internet one answers
            storm = publish(client, "Bão số 3 đổ bộ, bà con vào nơi trú ẩn ngay.", priority="emergency")
            assert storm["speech"]["provider"] == "espeak_ng" and not storm["speech"]["fallback_from"]
            assert len(standin.texts) == asked
