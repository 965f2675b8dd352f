"""The catalogue, tiers and fault map are data; these tests keep them honest and consistent
with the checks that claim to test them."""
from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest

from hub.simulation import FAULT_MODES

from hub_conformance import catalogue, quality, scaffold
from hub_conformance.params import PARAMETERS
from hub_conformance.proof import expected_failures
from hub_conformance.runner import suite_dir


def _check_requirements() -> dict[str, list[str]]:
    """requirement id → check functions, read from the suite's source (no import, no run)."""
    out: dict[str, list[str]] = {}
    for path in sorted(suite_dir().glob("check_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("check_"):
                for dec in node.decorator_list:
                    name = getattr(dec.func, "id", getattr(dec.func, "attr", "")) if isinstance(dec, ast.Call) else ""
                    if name == "requirement":
                        out.setdefault(dec.args[0].value, []).append(f"{path.stem}.{node.name}")
    return out


def test_catalogue_passes_its_schema() -> None:
    cat = catalogue.load()
    assert len(cat) >= 30
    for r in cat:
        assert r.evidence in ("verified", "inferred") and r.document and r.section, r.id


def test_every_entry_has_evidence_and_source() -> None:
    problems = catalogue.validate(catalogue.raw(), set(PARAMETERS))
    assert problems == []
    for entry in catalogue.raw()["requirements"]:
        assert entry["evidence"] and entry["source"]["document"] and entry["source"]["section"], entry["id"]


@pytest.mark.parametrize("mutate, complaint", [
    (lambda e: e.pop("evidence"), "missing evidence"),
    (lambda e: e.pop("source"), "missing"),
    (lambda e: e.update(evidence="verified", source={"document": "vendor-practice", "section": "x", "research": "B1"}),
     "must come from a Ministry text"),
    (lambda e: e.update(evidence="verified", source={"document": "dispatch-2455", "section": "x", "research": "S3"}),
     "which was not found"),
    (lambda e: e.update(evidence="probable"), "evidence must be one of"),
    (lambda e: e.update(capability="audio.teleport"), "not in the hub's vocabulary"),
    (lambda e: e.update(title_en="Heartbeat every 60 s"), "make it a suite parameter"),
    (lambda e: e.update(title_vi="Heartbeat"), "no Vietnamese letter"),
    (lambda e: e.update(parameters=["heartbeat_every"]), "unknown parameters"),
])
def test_schema_check_catches_dishonest_entries(mutate, complaint) -> None:  # noqa: ANN001
    data = copy.deepcopy(catalogue.raw())
    mutate(data["requirements"][0])
    problems = catalogue.validate(data, set(PARAMETERS))
    assert any(complaint in p for p in problems), problems


def test_catalogue_covers_the_issue() -> None:
    ids = set(catalogue.load().requirements)
    for wanted in ("PRIO-01", "PRIO-02", "PRIO-03", "PLAY-01", "STOP-01", "VOL-01", "VOL-02", "RELAY-01", "LED-01",
                   "LED-02", "BRIGHT-01", "POWER-01", "STAT-01", "HB-01", "LINK-01", "LINK-02", "ACK-01", "ACK-02",
                   "SEC-AUTH-01", "SEC-CRED-01", "SEC-TLS-01", "MAL-01", "MAL-02", "TIME-01", "TIME-02"):
        assert wanted in ids


def test_every_requirement_has_exactly_one_check_and_every_check_a_requirement() -> None:
    checks = _check_requirements()
    ids = set(catalogue.load().requirements)
    assert set(checks) == ids, (sorted(ids - set(checks)), sorted(set(checks) - ids))
    assert all(len(v) == 1 for v in checks.values()), {k: v for k, v in checks.items() if len(v) > 1}


def test_thresholds_are_parameters_chosen_by_the_hub() -> None:
    for p in PARAMETERS.values():
        assert "hub's choice" in p.basis, p.name
        assert p.default_device > 0 and p.default_simulator > 0


def test_tiers_are_sound_and_refer_to_known_requirements() -> None:
    ids = set(catalogue.load().requirements)
    assert quality.validate_tiers(quality.tiers(), ids) == []
    assert list(quality.tiers()["tiers"]) == ["bronze", "silver", "gold"]


def test_fault_map_names_known_modes_and_requirements() -> None:
    ids = set(catalogue.load().requirements)
    fmap = expected_failures()
    assert set(fmap) == set(FAULT_MODES)
    for mode, expected in fmap.items():
        assert expected and expected <= ids, (mode, sorted(expected - ids))


def test_scaffold_quality_file_lists_every_rule() -> None:
    import yaml

    rules = yaml.safe_load(scaffold.quality_scale_text("x"))["rules"]
    assert set(rules) == set(quality.tiers()["rules"]) and set(rules.values()) == {"todo"}


def test_suite_modules_are_never_collected_by_a_plain_pytest_run() -> None:
    # The repository's own pytest run collects test_*.py; the checks must not look like tests.
    names = [p.name for p in Path(suite_dir()).glob("*.py")]
    assert names and not any(n.startswith("test_") or n.endswith("_test.py") for n in names)
