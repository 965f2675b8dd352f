"""Templates, value transforms and the reading of device messages, without any network."""
from __future__ import annotations

import json

import pytest

from hub.units import from_vendor_scale, to_vendor_scale
from hub.vendor import StatusParseError

from hub_profiles import mqtt_parse
from hub_profiles.context import RenderContext
from hub_profiles.model import Payload
from hub_profiles.mqtt_adapter import render_payload
from hub_profiles.mqtt_sim import _invert
from hub_profiles.template import Missing, RenderError, Template, TemplateError
from hub_profiles.values import Scale, Transform, ValueSpec
from profiles_helpers import builtin, envelope, outgoing

VIETNAMESE = "Thông báo khẩn: bão số 3"


def lookup(values: dict) -> object:
    def get(name: str) -> object:
        if name not in values:
            raise Missing(name)
        return values[name]
    return get


def test_templates_render_and_keep_types() -> None:
    t = Template.parse("{prefix}/cmnd/{address}/POWER")
    assert t.names == ("prefix", "address")
    assert t.render_text(lookup({"prefix": "p", "address": "a1"})) == "p/cmnd/a1/POWER"
    # A lone placeholder keeps its type; inside text, values are spelt as JSON spells them.
    assert Template.parse("{params.level}").render(lookup({"params.level": 40})) == 40
    assert Template.parse("v={params.on}").render(lookup({"params.on": True})) == "v=true"
    assert Template.parse("{{literal}} {x}").render(lookup({"x": 1})) == "{literal} 1"
    for bad in ("{a", "a}", "{}", "{a b}", "{1x}"):
        with pytest.raises(TemplateError):
            Template.parse(bad)


@pytest.mark.parametrize("hi", [15, 31, 100, 255])
def test_scale_agrees_with_the_hub_units_both_ways(hi: int) -> None:
    out, back = Scale((0, 100), (0, hi)), Scale((0, hi), (0, 100))
    for level in range(101):
        assert out.apply(level) == to_vendor_scale(level, 0, hi)
    for value in range(hi + 1):
        assert back.apply(value) == from_vendor_scale(value, 0, hi)
    assert out.apply("40") == to_vendor_scale(40, 0, hi)  # devices often send numbers as text
    with pytest.raises(RenderError, match="outside the scale"):
        back.apply(hi + 1)  # a misreport is refused, never clipped into range
    with pytest.raises(RenderError, match="needs a number"):
        out.apply(True)


def test_scale_to_fractions_and_reversed_ranges() -> None:
    assert Scale((0, 100), (0.0, 1.0)).apply(25) == 0.25
    assert Scale((0, 100), (31, 0)).apply(0) == 31  # attenuation registers count down


def test_map_does_not_confuse_true_with_one() -> None:
    t = Transform(mapping=((1, "one"), (True, "yes")))
    assert t.apply(True) == "yes" and t.apply(1) == "one" and t.apply("1") == "one"
    with pytest.raises(RenderError, match="not in the map"):
        t.apply(2)


def test_value_default_stands_in_for_a_missing_param() -> None:
    spec = ValueSpec(Template.parse("{params.duration_s}"), default=0)
    assert spec.evaluate(lookup({})) == 0
    with pytest.raises(Missing):
        ValueSpec(Template.parse("{params.duration_s}")).evaluate(lookup({}))


def test_payloads_on_the_wire() -> None:
    text = Payload("text", Template.parse("{state}"))
    assert render_payload(text, lookup({"state": "ON"})) == b"ON"
    body = Payload("json", {"id": Template.parse("{command_id}"), "volume": Template.parse("{vol}"),
                            "text": Template.parse("{text}"), "fixed": 1, "nested": [Template.parse("x-{vol}")]})
    raw = render_payload(body, lookup({"command_id": "c1", "vol": 8, "text": VIETNAMESE}))
    assert raw == ('{"id":"c1","volume":8,"text":"' + VIETNAMESE + '","fixed":1,"nested":["x-8"]}').encode()


def test_render_context_speaks_for_the_hub() -> None:
    profile = builtin("tasmota_amp")
    env = envelope("led_show", {"text": VIETNAMESE})
    item = outgoing("amp1", env)
    ctx = RenderContext(env, item.device, values={}, prefix="p", unicode_text=False)
    assert ctx("text") == "Thong bao khan: bao so 3"  # boards without Unicode get ASCII, not garbage
    assert RenderContext(env, item.device, values={}, unicode_text=True)("text") == VIETNAMESE
    assert ctx("address") == "amp1" and ctx("prefix") == "p" and ctx("command_id") == env.command_id
    assert ctx("expires_at").endswith("Z")
    with pytest.raises(Missing, match="carries no params.duration_s"):
        ctx("params.duration_s")
    play = envelope("play", content={"media_uri": "https://cdn.example/a.mp3", "title": "Bản tin"})
    assert RenderContext(play, item.device, values={})("url") == "https://cdn.example/a.mp3"
    power = profile.commands["power"]
    on = envelope("power", {"on": True})
    assert RenderContext(on, item.device, values=power.values, prefix="p")("state") == "ON"


def test_the_simulator_reads_commands_back_through_their_templates() -> None:
    body = Payload("json", {"id": Template.parse("{command_id}"), "v": Template.parse("{vol}"),
                            "label": Template.parse("vol-{vol}")})
    raw = render_payload(body, lookup({"command_id": "c9", "vol": 7}))
    assert _invert(body, raw) == {"command_id": "c9", "vol": 7}
    assert _invert(Payload("text", Template.parse("{state}")), b"OFF") == {"state": "OFF"}
    assert _invert(body, b'{"id": "c9"}') is None  # not this command's shape


def test_tasmota_status_reply_and_presence_parsing() -> None:
    p = builtin("tasmota_amp")
    state = json.dumps({"Time": "2025-09-01T10:04:05", "POWER": "ON", "Volume": 15,
                        "Wifi": {"RSSI": 78, "Signal": -61}}).encode()
    st = mqtt_parse.parse_status(p.status, "amp1", state)  # type: ignore[arg-type]
    assert st["power"] is True and st["volume"] == 100 and st["activity"] == "idle"
    assert st["signal"] == {"network": "wifi", "quality": 78, "rssi_dbm": -61}
    assert st["online"] is True and st["reported_at"].tzinfo is not None
    with pytest.raises(StatusParseError, match="volume: 40 is outside the scale 0–15"):
        mqtt_parse.parse_status(p.status, "amp1", b'{"POWER": "ON", "Volume": 40}')  # type: ignore[arg-type]
    with pytest.raises(StatusParseError, match="power: 'MAYBE' is not in the map"):
        mqtt_parse.parse_status(p.status, "amp1", b'{"POWER": "MAYBE"}')  # type: ignore[arg-type]
    presence = p.status.presence  # type: ignore[union-attr]
    assert mqtt_parse.parse_presence(presence, "amp1", b"Online") is True
    assert mqtt_parse.parse_presence(presence, "amp1", b"Offline") is False
    assert mqtt_parse.parse_presence(presence, "amp1", b"") is None  # a retained presence being cleared
    with pytest.raises(StatusParseError, match="neither"):
        mqtt_parse.parse_presence(presence, "amp1", b"Sleeping")
