"""The suite's own logic without a device: results, verdicts, parameters, targets, security
reading of config schemas, quality tiers and the reports."""
from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import RAISE, Schema, fields

from hub_conformance import params, quality, reports, security, target
from hub_conformance.results import CheckRecord, aggregate, verdict


def rec(result: str, msg: str | None = None) -> CheckRecord:
    return CheckRecord("n", "check_x", "X-01", result=result, message=msg)


@pytest.mark.parametrize("results, expected", [
    (["pass"], "pass"), (["pass", "not_applicable"], "pass"), (["not_applicable"], "not_applicable"),
    (["pass", "skipped"], "skipped"), (["pass", "error"], "error"), (["error", "fail"], "fail"),
    ([], "not_run"), (["not_run"], "not_run"),
])
def test_aggregate_never_passes_what_was_not_shown(results, expected) -> None:  # noqa: ANN001
    assert aggregate([rec(r, "m") for r in results])[0] == expected


def _req(rid: str, tier: str, result: str) -> dict:
    return {"id": rid, "tier": tier, "result": result}


def test_verdict_strict_and_lenient() -> None:
    reqs = [_req("A-01", "required", "pass"), _req("B-01", "recommended", "fail")]
    assert verdict(reqs, "strict")[0] == "fail"
    outcome, reasons, warnings = verdict(reqs, "lenient")
    assert outcome == "pass" and warnings == ["B-01"] and reasons == []
    assert verdict([_req("A-01", "required", "skipped")], "lenient")[0] == "incomplete"
    assert verdict([_req("A-01", "required", "error")], "lenient")[0] == "fail"
    assert verdict([_req("A-01", "required", "not_applicable")], "strict")[0] == "pass"


def test_parameters_resolve_with_origin_and_refuse_nonsense() -> None:
    got = params.resolve(True, {"ack_timeout_s": 3}, {"heartbeat_interval_s": 0.5})
    assert got["ack_timeout_s"].value == 3 and got["ack_timeout_s"].origin == "target file"
    assert got["heartbeat_interval_s"].origin == "command line"
    assert got["status_timeout_s"].origin == "default"
    assert params.resolve(False)["heartbeat_interval_s"].value == 60
    assert got["ack_timeout_s"].to_dict(1.25)["applied_limit"] == 3.75
    assert got["level_step"].to_dict(2.0)["applied_limit"] == 1.0  # tolerance stretches time only
    with pytest.raises(params.ParameterError, match="unknown"):
        params.resolve(True, {"heartbeat": 1})
    with pytest.raises(params.ParameterError, match="positive"):
        params.parse_assignments(["ack_timeout_s=-1"])


def test_target_file_expands_secrets_run_id_and_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CF_TEST_SECRET", "s3cret")
    f = tmp_path / "t.yaml"
    f.write_text("config:\n  password: ${CF_TEST_SECRET}\n  prefix: p/{run_id}\n  url: http://127.0.0.1:{free_port}/a\n"
                 "  again: '{free_port}'\n"
                 "devices:\n  - {address: 'A-{run_id}', kind: speaker, capabilities: [audio.stop]}\n"
                 "parameters: {heartbeat_interval_s: 60}\n", encoding="utf-8")
    t = target.load(f, "r1")
    assert t.config["password"] == "s3cret" and t.config["prefix"] == "p/r1"
    assert t.config["url"].endswith(f":{t.config['again']}/a")
    assert t.devices[0].address == "A-r1" and t.devices[0].capabilities == ["audio.stop"]
    f.write_text("devices:\n  - {address: a, kind: toaster}\n", encoding="utf-8")
    with pytest.raises(target.TargetError, match="kind"):
        target.load(f, "r1")
    f.write_text("config: {password: '${CF_NOT_SET_ANYWHERE}'}\n", encoding="utf-8")
    with pytest.raises(target.TargetError, match="CF_NOT_SET_ANYWHERE"):
        target.load(f, "r1")


class GoodSchema(Schema):
    class Meta:
        unknown = RAISE

    host = fields.Str(load_default="127.0.0.1")
    password = fields.Str(load_default=None, allow_none=True, load_only=True)
    api_key = fields.Str(load_default=None, allow_none=True, load_only=True)
    tls = fields.Bool(load_default=True)
    verify_tls = fields.Bool(load_default=True)


class BadSchema(Schema):
    password = fields.Str(load_default="admin")
    token = fields.Str(load_default=lambda: "fixed")
    base_url = fields.Str(load_default="http://10.0.0.1")
    verify_tls = fields.Bool(load_default=False)


def test_security_reading_of_config_schemas() -> None:
    assert security.secret_fields(GoodSchema) == ["api_key", "password"]
    assert security.default_credentials(GoodSchema) == {}
    assert security.default_credentials(BadSchema) == {"password": "admin", "token": "fixed"}
    assert security.channel_encryption({"tls": True}, GoodSchema)[0] is True
    assert security.channel_encryption({"base_url": "http://10.0.0.1"}, BadSchema)[0] is False
    assert security.channel_encryption({"base_url": "https://gw"}, BadSchema)[0] is True
    assert security.channel_encryption({"host": "x"}, GoodSchema)[0] is None
    assert "verify_tls defaults to false" in security.verification_problems({}, BadSchema)
    wrong = security.wrong_credentials({"password": "right", "host": "h"}, GoodSchema, "t")
    assert wrong == {"password": "wrong-t", "host": "h"}
    assert security.redact({"password": "right", "host": "h"}, GoodSchema) == {"password": "***", "host": "h"}


class _Manifest:
    config_schema = GoodSchema


class _Adapter:
    manifest = _Manifest()


def _facts(tmp_path: Path, text: str | None, mode: str = "strict") -> dict:
    qf = None
    if text is not None:
        qf = tmp_path / "quality_scale.yaml"
        qf.write_text(text, encoding="utf-8")
    return {"adapter_cls": _Adapter, "simulator_factory": object(), "distribution": None, "mode": mode,
            "supported_faults": lambda: {"silent", "rejects_all", "no_heartbeat", "misreports_volume"},
            "quality_file": qf}


def test_quality_tiers_are_cumulative_and_checked(tmp_path: Path) -> None:
    bronze_reqs = quality.tiers()["tiers"]["bronze"]["requirements"]
    all_pass = {r: "pass" for r in bronze_reqs}
    claims = "rules:\n  config-schema: done\n  simulator: done\n  tests: done\n  readme:\n    status: exempt\n" \
             "    comment: documented in the vendor's manual\n"
    got = quality.evaluate(_facts(tmp_path, claims), all_pass, "strict")
    assert got["reached"] == "bronze", got["tiers"]["bronze"]["missing"]
    assert got["tiers"]["silver"]["met"] is False
    # A claim the suite can check and that does not hold does not count.
    got = quality.evaluate(_facts(tmp_path, claims.replace("readme:\n    status: exempt\n    comment: documented in "
                                                           "the vendor's manual\n", "readme: done\n")),
                           all_pass, "strict")
    assert got["reached"] is None
    assert any("claimed done but" in m for m in got["tiers"]["bronze"]["missing"])
    # An exemption without a reason is a todo; a failing requirement blocks the tier.
    got = quality.evaluate(_facts(tmp_path, claims.replace("    comment: documented in the vendor's manual\n", "")),
                           all_pass, "strict")
    assert got["reached"] is None and got["problems"]
    got = quality.evaluate(_facts(tmp_path, claims), {**all_pass, "PLAY-01": "fail"}, "strict")
    assert got["reached"] is None
    assert quality.evaluate(_facts(tmp_path, None), all_pass, "strict")["reached"] is None


def test_html_report_escapes_and_labels(tmp_path: Path) -> None:
    report = {
        "plugin": {"name": "x<y", "title": "T", "version": "1", "distribution": "d", "distribution_version": "1"},
        "suite": {"name": "hub-conformance", "version": "0"}, "mode": "strict", "tolerance": 1.25,
        "catalogue": {"version": "1.0", "evidence_counts": {"verified": 3, "inferred": 30}},
        "target": {"simulator": True, "devices": [], "witness": None, "link_control": None, "faults": {}},
        "started_at": "now", "duration_s": 1, "verdict": "fail", "verdict_reasons": ["A-01"], "warnings": [],
        "summary": {"pass": 0, "fail": 1, "error": 0, "skipped": 0, "not_applicable": 0, "not_run": 0},
        "parameters": {}, "quality": {"reached": None, "tiers": {}},
        "requirements": [{"id": "A-01", "title_en": "<script>", "title_vi": "Bão", "tier": "required",
                          "evidence": "inferred", "capability": None, "result": "fail", "messages": ["m<1>"],
                          "rationale": "r", "checks": [],
                          "source": {"title": "Hub design", "section": "s", "research": None}}],
    }
    html = reports.render_html(report)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Bão" in html and "FAIL" in html
    assert "A-01" in reports.summary_text(report)
