"""Sources, outputs, speech providers and media stores load through entry points like vendors.

The plugins are in tests/plugin_kinds (written from docs/writing-a-plugin.md): a directory with
`*.dist-info/entry_points.txt`, put on PYTHONPATH for a `hub plugins` subprocess or on sys.path
in-process, so they are found exactly as installed third-party distributions are."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hub.access.actors import local_admin
from hub.api import create_app
from hub.config import Settings
from hub.hookspecs import hookimpl
from hub.media import MediaNotFound, signature_ok
from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.source import SourceError
from hub.speech import SpeechError, SpeechRequest

ROOT = Path(__file__).resolve().parents[1]
KINDS_DIR = Path(__file__).parent / "plugin_kinds"
SAMPLES = {"sources": "sample_feed", "outputs": "sample_event_log", "speech_providers": "sample_silence",
           "media_stores": "sample_memory"}


def hub_plugins(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(KINDS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "hub.cli", "plugins", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT,
                          env={**os.environ, "HUB_CONFIG": str(config), "PYTHONPATH": path, **(env or {})})


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """Every installed plugin plus tests/plugin_kinds, loaded from entry points in this process."""
    monkeypatch.syspath_prepend(str(KINDS_DIR))
    plugins = Plugins()
    plugins.load_entry_points()
    yield plugins
    for name in [m for m in sys.modules if m.startswith(("hub_kinds_sample", "hub_kinds_broken"))]:
        del sys.modules[name]


def by_name(described: list[dict]) -> dict[str, dict]:
    """Plugins by entry-point name; the loaded one first when a skipped one has the same name."""
    found: dict[str, dict] = {}
    for p in described:
        found.setdefault(p["name"], p)
    return found


def test_hub_plugins_lists_every_kind_beside_the_vendors(config_file: Path) -> None:
    r = hub_plugins(config_file)
    assert r.returncode == 0, r.stderr
    lines = [line.strip() for line in r.stdout.splitlines()]
    for expected in ("source sample_feed: Items from a JSON file (json)",
                     "output sample_event_log: Device presence to a file (events device.offline, device.online;"
                     " every 60 s)",
                     "speech sample_silence: Silence, for tests (languages vi, en)",
                     "media sample_memory: Media in memory",
                     "vendor mqtt_speaker: speaker, led_board over mqtt-3.1.1"):
        assert expected in lines, r.stdout
    assert "sample_source 0.1.0  (hub.sources, hub-kinds-sample)" in lines


def test_broken_plugins_are_reported_and_the_others_still_load(config_file: Path) -> None:
    r = hub_plugins(config_file, "--json")
    assert r.returncode == 0, r.stderr
    plugins = by_name(json.loads(r.stdout))
    for key, name in SAMPLES.items():  # every sound plugin of the same distributions loaded
        # (the repository's own plugins of these kinds, under plugins/, load beside them)
        assert [m["name"] for p in plugins.values() if p["distribution"] == "hub-kinds-sample"
                for m in p.get(key, [])] == [name]
    skipped = plugins["broken_import"]
    assert skipped["loaded"] is False and skipped["distribution"] == "hub-kinds-broken"
    assert "hub_kinds_no_such_dependency" in skipped["problems"][0]
    assert "register_outputs raised RuntimeError: the output's settings file is missing" in \
        plugins["broken_hook"]["problems"][0]
    # the warnings name each plugin on stderr too (text mode)
    stderr = hub_plugins(config_file).stderr
    for name in ("broken_import", "broken_hook", "broken_contract", "taken_name"):
        assert f"hub: warning: plugin {name}" in stderr, stderr


def test_a_name_claimed_twice_is_refused_and_the_first_keeps_it(kinds: Plugins) -> None:
    assert kinds.sources()["sample_feed"].__module__ == "hub_kinds_sample.source"
    problems = by_name(kinds.describe())["taken_name"]["problems"]
    assert problems == ["plugin taken_name: hub_kinds_broken.taken_name.Impostor claims the source name sample_feed,"
                        " already taken by hub_kinds_sample.source (plugin sample_source); ignored"]


def test_an_entry_point_name_another_distribution_holds_is_refused(kinds: Plugins) -> None:
    skipped = [p for p in kinds.describe() if p["name"] == "sample_media" and not p["loaded"]]
    assert skipped == [{"name": "sample_media", "group": "hub.tools", "distribution": "hub-kinds-broken",
                        "version": "0.1.0", "loaded": False,
                        "problems": ["plugin sample_media (hub.tools, hub-kinds-broken): the name is already taken by "
                                     "hub-kinds-sample (hub_kinds_sample.media); skipped"]}]
    stores = kinds.media_stores()  # the hub's own `directory` store is installed beside the samples
    assert stores["sample_memory"].__module__ == "hub_kinds_sample.media"
    assert [name for name, cls in stores.items() if cls.__module__.startswith("hub_kinds")] == ["sample_memory"]


def test_a_class_breaking_its_contract_is_refused_naming_the_plugin(kinds: Plugins) -> None:
    test_speech = {n for n, cls in kinds.speech_providers().items() if cls.__module__.startswith("hub_kinds_")}
    assert "deaf_output" not in kinds.outputs() and test_speech == {"sample_silence"}
    problems = by_name(kinds.describe())["broken_contract"]["problems"]
    assert any(p.startswith("plugin broken_contract: speech provider class hub_kinds_broken.contract.NoManifest "
                            "has no manifest") for p in problems), problems
    assert any("DeafOutput declares events but does not implement handle()" in p for p in problems), problems


def test_api_plugins_lists_every_kind_and_the_skipped_ones(kinds: Plugins, settings: Settings) -> None:
    rt = Runtime(settings, plugins=kinds)
    rt.db.create()
    try:
        r = create_app(rt, authenticator=local_admin).test_client().get("/api/plugins")
        assert r.status_code == 200, r.get_json()
        plugins = by_name(r.get_json())
    finally:
        rt.close()
    assert plugins["sample_speech"]["speech_providers"][0]["languages"] == ["vi", "en"]
    assert plugins["sample_output"]["outputs"][0]["events"] == ["device.offline", "device.online"]
    assert plugins["sample_media"]["media_stores"][0]["config_schema"]["required"] == ["secret"]
    assert plugins["sample_source"]["sources"][0]["min_interval_s"] == 30
    assert plugins["broken_import"]["loaded"] is False and plugins["broken_import"]["problems"]
    assert any(v["name"] == "mqtt_speaker" for p in plugins.values() for v in p.get("vendors", []))


def test_hub_plugins_env_narrows_every_kind(config_file: Path) -> None:
    r = hub_plugins(config_file, "--json", env={"HUB_PLUGINS": "sample_speech"})
    assert r.returncode == 0, r.stderr
    assert [p["name"] for p in json.loads(r.stdout) if p["group"] != "hub.tools"] == ["sample_speech"]


def test_a_vendor_class_without_a_manifest_is_now_reported_not_fatal() -> None:
    class NotAnAdapter:
        pass

    p = Plugins()
    p.register_module(types.SimpleNamespace(register_vendors=hookimpl(lambda register: register(NotAnAdapter))),
                      "junk")
    p.register_module(types.SimpleNamespace(register_speech_providers=hookimpl(lambda register: None)), "empty")
    assert p.vendors() == {}
    assert p.problems and p.problems[0].startswith("plugin junk: register_vendors registered") \
        and "not a hub.vendor.VendorAdapter subclass" in p.problems[0]


# -- the sample plugins are the guide's examples, and do what it says ------------------------------------


def test_the_sample_plugins_are_the_examples_of_the_guide() -> None:
    """Each hub_kinds_sample module is, below its docstring and `from __future__` line, the guide's
    example for its kind, character for character: the plugins tested here are the doc's."""
    guide = (ROOT / "docs/writing-a-plugin.md").read_text(encoding="utf-8")
    sections = {"source": "## 12. A content source", "output": "## 13. An output",
                "speech": "## 14. A speech provider", "media": "## 15. A media store"}
    for module, heading in sections.items():
        section = guide[guide.index(heading):]
        example = re.search(r"^```python\n(.*?)^```", section, re.S | re.M).group(1)
        code = (KINDS_DIR / "hub_kinds_sample" / f"{module}.py").read_text(encoding="utf-8")
        assert code.split("from __future__ import annotations\n\n", 1)[1] == example, module


def test_the_sample_source_tests_fetches_and_refuses_bad_settings(kinds: Plugins, tmp_path: Path) -> None:
    cls = kinds.source("sample_feed")
    with pytest.raises(SourceError, match="source sample_feed: configuration: path: Missing data"):
        cls.configured({})
    missing = cls.configured({"path": str(tmp_path / "none.json")})
    check = missing.test()
    assert not check.ok and "cannot read" in check.detail
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps([
        {"id": "a", "title": "Lịch cắt điện", "published_at": "2026-12-01T08:00:00+07:00"},
        {"id": "b", "title": "Bão số 9", "published_at": "2026-12-03T08:00:00+07:00", "severity": "emergency"},
    ]), encoding="utf-8")
    source = cls.configured({"path": str(feed)})
    assert source.test().ok and [i.external_id for i in source.test().sample] == ["a", "b"]
    since = datetime(2026, 12, 2, tzinfo=timezone.utc)
    assert [(i.external_id, i.severity, i.language) for i in source.fetch(since)] == [("b", "emergency", "vi")]


def test_the_sample_speech_provider_speaks_only_what_it_declares(kinds: Plugins) -> None:
    provider = kinds.speech_provider("sample_silence").configured(None)
    result = provider.synthesize(SpeechRequest("Thông báo khẩn về bão số 9", "vi", voice="vi-quiet"))
    assert result.media_type == "audio/wav" and result.duration_s == pytest.approx(2.8)
    with wave.open(BytesIO(result.audio)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(2.8)
    with pytest.raises(SpeechError, match="sample_silence: cannot speak 'km'"):
        provider.synthesize(SpeechRequest("សួស្តី", "km"))
    with pytest.raises(SpeechError, match="no voice 'robot'"):
        provider.synthesize(SpeechRequest("xin chào", "vi", voice="robot"))


def test_the_sample_media_store_signs_urls_that_expire(kinds: Plugins) -> None:
    store = kinds.media_store("sample_memory").configured({"secret": "s3cret"})
    info = store.put("content/2026/bao.wav", b"RIFF....", "audio/wav")
    assert store.get("content/2026/bao.wav").info == info and info.size == 8
    signed = store.signed_url("content/2026/bao.wav", timedelta(minutes=10))
    query = parse_qs(urlsplit(signed.url).query)
    expires, sig = int(query["expires"][0]), query["sig"][0]
    assert signature_ok(b"s3cret", "content/2026/bao.wav", expires, sig, datetime.now(timezone.utc))
    assert not signature_ok(b"s3cret", "content/2026/bao.wav", expires, sig, signed.expires_at)  # expired
    assert not signature_ok(b"s3cret", "content/2026/other.wav", expires, sig, datetime.now(timezone.utc))
    store.delete("content/2026/bao.wav")
    with pytest.raises(MediaNotFound):
        store.get("content/2026/bao.wav")


def test_the_sample_output_takes_the_events_it_names(kinds: Plugins, tmp_path: Path) -> None:
    output = kinds.output("sample_event_log").configured({"path": str(tmp_path / "out.jsonl")})
    typed = types.SimpleNamespace(type="device.online", device_id="SPK-1")  # a typed event has a `type` name
    events = [{"type": "device.offline", "device_id": "SPK-1"}, {"type": "delivery.changed"}, typed]
    for event in events:
        if output.manifest.wants(event):
            output.handle(event)
    output.run_periodic(datetime(2026, 12, 5, tzinfo=timezone.utc))
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == [{"type": "device.offline"}, {"type": "device.online"},
                     {"at": "2026-12-05T00:00:00+00:00", "seen": 2}]
