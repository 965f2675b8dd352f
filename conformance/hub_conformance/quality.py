"""Quality tiers (tiers.yaml) and a plugin's quality_scale.yaml: which tier a plugin reaches.

Rules are claims a vendor makes (done / todo / exempt); where the suite can check a claim it
does, and a rule claimed done that does not hold does not count — like hassfest's validators.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from marshmallow import RAISE

from hub.simulation import FAULT_MODES, UnsupportedFault

from hub_conformance import security

STATUSES = ("done", "todo", "exempt")
QUALITY_FILE = "quality_scale.yaml"


class QualityError(ValueError):
    """tiers.yaml or a plugin's quality_scale.yaml is malformed."""


@lru_cache(maxsize=1)
def tiers() -> dict[str, Any]:
    data = yaml.safe_load(resources.files("hub_conformance").joinpath("tiers.yaml").read_text(encoding="utf-8"))
    problems = validate_tiers(data)
    if problems:
        raise QualityError("tiers.yaml is invalid:\n  " + "\n  ".join(problems))
    return data


def validate_tiers(data: Any, known_requirements: set[str] | None = None) -> list[str]:
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("rules"), dict) or not isinstance(data.get("tiers"), dict):
        return ["tiers.yaml needs `rules` and `tiers` mappings"]
    rules = data["rules"]
    for name, rule in rules.items():
        if not isinstance(rule, dict) or not rule.get("description"):
            problems.append(f"rule {name}: needs a description")
        elif rule.get("check") and rule["check"] not in CHECKS:
            problems.append(f"rule {name}: unknown check {rule['check']}")
    seen_rules: set[str] = set()
    for tier, spec in data["tiers"].items():
        for r in spec.get("rules", []):
            if r not in rules:
                problems.append(f"tier {tier}: unknown rule {r}")
            if r in seen_rules:
                problems.append(f"tier {tier}: rule {r} already belongs to a lower tier")
            seen_rules.add(r)
        if known_requirements is not None:
            for key in ("requirements", "requirements_passed"):
                unknown = sorted(set(spec.get(key, [])) - known_requirements)
                if unknown:
                    problems.append(f"tier {tier}: unknown requirements {', '.join(unknown)}")
    unused = sorted(set(rules) - seen_rules)
    if unused:
        problems.append(f"rules in no tier: {', '.join(unused)}")
    return problems


def find_quality_file(module_name: str) -> Path | None:
    """quality_scale.yaml next to the plugin's module, in its package, or at the project root
    of an editable install."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        return None
    here = Path(spec.origin).resolve().parent
    for folder in (here, here.parent):
        candidate = folder / QUALITY_FILE
        if candidate.is_file():
            return candidate
    return None


def read_quality_file(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{rule: {status, comment}} and the problems with the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        return {}, [f"{path.name}: not valid YAML: {exc}"]
    raw = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        return {}, [f"{path.name}: needs a `rules` mapping"]
    out, problems = {}, []
    known = tiers()["rules"]
    for name, value in raw.items():
        if name not in known:
            problems.append(f"{path.name}: unknown rule {name}")
            continue
        status, comment = (value, None) if isinstance(value, str) else (
            (value.get("status"), value.get("comment")) if isinstance(value, dict) else (None, None))
        if status not in STATUSES:
            problems.append(f"{path.name}: rule {name}: status must be done, todo or exempt")
            continue
        if status == "exempt" and not (isinstance(comment, str) and comment.strip()):
            problems.append(f"{path.name}: rule {name}: an exemption needs a comment saying why")
            status = "todo"
        out[name] = {"status": status, "comment": comment}
    return out, problems


# -- checks of claims --------------------------------------------------------------------------------
# Each gets the run's facts and returns None when the claim holds, else why not.
Facts = Mapping[str, Any]


def _config_schema(f: Facts) -> str | None:
    schema = f["adapter_cls"].manifest.config_schema
    if schema is None:
        return "the manifest has no config_schema"
    unknown = getattr(getattr(schema, "Meta", None), "unknown", None)
    return None if unknown == RAISE else "the config schema does not refuse unknown keys (Meta.unknown = RAISE)"


def _simulator(f: Facts) -> str | None:
    return None if f["simulator_factory"] is not None else "no simulator is registered for the vendor"


def _readme(f: Facts) -> str | None:
    dist = f.get("distribution")
    if not dist:
        return "the plugin's distribution is unknown"
    try:
        meta = md.metadata(dist)
    except md.PackageNotFoundError:
        return f"distribution {dist} not found"
    body = meta.get_payload() or meta.get("Description") or ""  # type: ignore[attr-defined]
    return None if len(body.strip()) >= 200 else "the distribution has no README (long description) worth the name"


def _secrets_load_only(f: Facts) -> str | None:
    schema = f["adapter_cls"].manifest.config_schema
    if schema is None:
        return None
    leaky = [n for n, fld in schema().fields.items() if security.SECRET_NAME.search(n) and not fld.load_only]
    return f"credential settings not load_only: {', '.join(leaky)}" if leaky else None


def _fault_modes(f: Facts, minimum: int = 4) -> str | None:
    supported = f["supported_faults"]()
    if supported is None:
        return "no simulator to imitate fault modes"
    return None if len(supported) >= minimum else (
        f"the simulator imitates {len(supported)} fault modes ({', '.join(sorted(supported)) or 'none'}); "
        f"{minimum} needed")


def _all_fault_modes(f: Facts) -> str | None:
    supported = f["supported_faults"]()
    if supported is None:
        return "no simulator to imitate fault modes"
    missing = sorted(set(FAULT_MODES) - set(supported))
    return f"fault modes not imitated: {', '.join(missing)}" if missing else None


def _strict_run(f: Facts) -> str | None:
    return None if f["mode"] == "strict" else "this run was not --strict"


CHECKS: dict[str, Callable[..., str | None]] = {
    "config_schema": _config_schema, "simulator": _simulator, "readme": _readme,
    "secrets_load_only": _secrets_load_only, "fault_modes": _fault_modes, "all_fault_modes": _all_fault_modes,
    "strict_run": _strict_run,
}


def probe_faults(factory: Any, config: dict[str, Any], devices: list[Any], extra: Any = ()) -> set[str]:
    """The fault modes a simulator factory accepts (it must raise UnsupportedFault for the rest),
    of the vocabulary and of `extra` (the simulator's own). Nothing is started: the factory is
    only asked to build a simulator."""
    supported: set[str] = set()
    if not devices:
        return supported
    for mode in [*FAULT_MODES, *extra]:
        try:
            sim = factory(config, devices, {devices[0].address: {mode}})
        except UnsupportedFault:
            continue
        except Exception:  # a factory that breaks on a fault mode does not support it
            continue
        supported.add(mode)
        close = getattr(sim, "close", None)
        if callable(close):
            close()
    return supported


def evaluate(facts: Facts, requirement_results: Mapping[str, str], mode: str) -> dict[str, Any]:
    """Which tier the plugin reaches, and for each tier what is missing."""
    spec = tiers()
    path: Path | None = facts.get("quality_file")
    claims: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    if path is not None:
        claims, problems = read_quality_file(path)
    out_tiers: dict[str, Any] = {}
    reached: str | None = None
    still_climbing = True
    for tier, t in spec["tiers"].items():
        missing: list[str] = []
        rules_out = {}
        for rule in t.get("rules", []):
            claim = claims.get(rule, {"status": "todo", "comment": None})
            status, why = claim["status"], claim.get("comment")
            check_name = spec["rules"][rule].get("check")
            verified = None
            # A rule the suite can check is checked even when exempted: only rules marked
            # `exemptable` (the hardware may make them impossible) accept an exemption that fails.
            if check_name and status in ("done", "exempt"):
                kwargs = {k: v for k, v in spec["rules"][rule].items() if k == "minimum"}
                problem = CHECKS[check_name](facts, **kwargs)
                verified = problem is None
                if problem and status == "done":
                    missing.append(f"rule {rule} is claimed done but: {problem}")
                elif problem and not spec["rules"][rule].get("exemptable"):
                    missing.append(f"rule {rule} is exempt, but the suite checks it, so an exemption is refused: "
                                   f"{problem}")
            elif status == "todo":
                missing.append(f"rule {rule} is todo")
            rules_out[rule] = {"status": status, "comment": why, "checked": check_name is not None,
                               "holds": verified}
        for rid in t.get("requirements", []):
            res = requirement_results.get(rid, "not_run")
            if res not in ("pass", "not_applicable"):
                missing.append(f"requirement {rid} is {res}")
        for rid in t.get("requirements_passed", []):
            res = requirement_results.get(rid, "not_run")
            if res != "pass" and f"requirement {rid} is {res}" not in missing:
                missing.append(f"requirement {rid} must pass (is {res})")
        if t.get("mode") and t["mode"] != mode:
            missing.append(f"the run must be --{t['mode']}")
        met = not missing and path is not None
        if path is None:
            missing.insert(0, f"no {QUALITY_FILE} found next to the plugin module")
        out_tiers[tier] = {"summary": t.get("summary", ""), "met": met, "missing": missing, "rules": rules_out}
        if still_climbing and met:
            reached = tier
        else:
            still_climbing = False
    return {"reached": reached, "quality_file": str(path) if path else None, "problems": problems,
            "tiers": out_tiers, "tiers_version": spec.get("version")}
