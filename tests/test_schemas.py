"""The exchange schemas: JSON Schema export stays in step with the marshmallow code."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from marshmallow import ValidationError

from hub.schemas import CommandSchema, ContentSchema
from hub.schemas.export import build_all, drift, render, write_all

ROOT = Path(__file__).resolve().parents[1]


def test_checked_in_schemas_match_the_code() -> None:
    stale = drift(ROOT / "schemas")
    assert stale == [], f"run `hub schemas export`: {stale} differ from the code"


def test_drift_is_detected(tmp_path: Path) -> None:
    write_all(tmp_path)
    assert drift(tmp_path) == []
    doc = json.loads((tmp_path / "command.schema.json").read_text())
    doc["properties"]["verb"]["enum"].append("self_destruct")
    (tmp_path / "command.schema.json").write_text(render(doc))
    assert drift(tmp_path) == ["command.schema.json"]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    doc = build_all()[name]
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def test_exported_command_schema_checks_params_per_verb() -> None:
    v = _validator("command.schema.json")
    good = {"verb": "set_volume", "params": {"level": 70}, "target": {"areas": ["80"]}}
    assert not list(v.iter_errors(good))
    bad = {"verb": "set_volume", "params": {"level": 150}, "target": {"areas": ["80"]}}
    assert any("150" in e.message for e in v.iter_errors(bad))
    assert list(v.iter_errors({"verb": "explode", "target": {"areas": ["80"]}}))


def test_exported_content_schema_accepts_a_vietnamese_bulletin() -> None:
    v = _validator("content.schema.json")
    doc = {"title": "Thông báo khẩn: bão số 3", "kind": "tts_text", "body": "Bà con chú ý…", "priority": "emergency"}
    assert not list(v.iter_errors(doc))
    assert list(v.iter_errors({**doc, "priority": "urgent"}))


@pytest.mark.parametrize("raw, field", [
    ({"verb": "play", "target": {"areas": ["80"]}}, "content_id"),
    ({"verb": "set_volume", "params": {"level": 150}, "target": {"areas": ["80"]}}, "params"),
    ({"verb": "set_volume", "params": {"level": 10}}, "target"),
    ({"verb": "set_volume", "params": {"level": 10}, "target": {"kinds": ["speaker"]}}, "target"),
    ({"verb": "led_show", "target": {"devices": ["a"]}}, "params"),
    ({"verb": "power", "params": {"on": True, "voltage": 5}, "target": {"devices": ["a"]}}, "params"),
])
def test_command_schema_names_the_bad_field(raw: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        CommandSchema().load(raw)
    assert field in err.value.messages


def test_content_kind_needs_its_payload() -> None:
    with pytest.raises(ValidationError) as err:
        ContentSchema().load({"title": "x", "kind": "audio_file"})
    assert "media" in err.value.messages
