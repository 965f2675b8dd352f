"""Proof that the suite fails: run it against a plugin's simulator with each fault mode of
hub/simulation.py switched on, and check that exactly the expected requirements fail — no
more (the suite does not blame the wrong thing), no fewer (it catches the fault) — and that the
clean simulator passes everything that applies.

A plugin's own tests prove themselves in a few lines:

    from hub_conformance.proof import run_fault_matrix

    def test_suite_catches_every_fault(tmp_path):
        matrix = run_fault_matrix("acme_speaker", report_root=tmp_path)
        matrix.assert_ok()
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hub.simulation import FAULT_MODES

from hub_conformance import loading, quality, runner
from hub_conformance.results import NOT_PASSING
from hub_conformance.target import Target, expand, parse_devices

# Small limits for simulators on loopback, so that a fault matrix (where silent devices make
# every check wait its full timeout) stays within minutes. Still generous: the simulator answers
# in milliseconds.
FAST_PARAMS: dict[str, float] = {"ack_timeout_s": 1.5, "status_timeout_s": 1.5, "heartbeat_interval_s": 0.5,
                                 "heartbeat_timeout_s": 3.0, "offline_timeout_s": 4.0, "recovery_timeout_s": 10.0}


def fast_params(**overrides: float) -> dict[str, float]:
    """FAST_PARAMS (and `overrides`, idle-machine values too) stretched by the test time scale
    (hub.testing.time_scale: HUB_TEST_TIME_SCALE), so that a simulator run on a loaded machine
    is not failed by its own slowness. A device's certification limits are not these."""
    from hub.testing import scaled

    return {k: scaled(v) for k, v in {**FAST_PARAMS, **overrides}.items()}


@lru_cache(maxsize=1)
def expected_failures() -> dict[str, frozenset[str]]:
    """fault mode → requirement IDs the suite must report failing (fault_map.yaml)."""
    data = yaml.safe_load(resources.files("hub_conformance").joinpath("fault_map.yaml").read_text(encoding="utf-8"))
    return {mode: frozenset(ids) for mode, ids in data["faults"].items()}


def write_target(path: Path, *, config: Mapping[str, Any] | None = None,
                 devices: Iterable[Mapping[str, Any]] | None = None, media: Mapping[str, Any] | None = None,
                 parameters: Mapping[str, Any] | None = None) -> Path:
    data: dict[str, Any] = {}
    if config is not None:
        data["config"] = dict(config)
    if devices is not None:
        data["devices"] = [dict(d) for d in devices]
    if media:
        data["media"] = dict(media)
    if parameters:
        data["parameters"] = dict(parameters)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run_suite(vendor: str, *, report_dir: Path, config: Mapping[str, Any] | None = None,
              devices: Iterable[Mapping[str, Any]] | None = None, target: Path | None = None,
              faults: Iterable[str] = (), mode: str = "strict", params: Mapping[str, float] | None = None,
              simulator: bool = True, timeout: float = 900) -> runner.RunResult:
    """One certification run, as `hub certify` does it. `config` and `devices` (dicts with
    address and kind) are written to a target file; "{run_id}" in config values keeps parallel
    runs apart."""
    report_dir = Path(report_dir)
    if target is None and (config is not None or devices is not None):
        target = write_target(report_dir / "target.yaml", config=config, devices=devices)
    return runner.run(vendor, report_dir=report_dir, simulator=simulator, target=target, mode=mode,
                      params=dict(fast_params() if params is None else params), faults=faults, timeout=timeout)


def supported_fault_modes(vendor: str, *, config: Mapping[str, Any] | None = None,
                          devices: Iterable[Mapping[str, Any]] | None = None) -> set[str]:
    """The fault modes the vendor's simulator accepts (it raises UnsupportedFault for the rest)."""
    return _simulator_faults(vendor, config=config, devices=devices)[0]


def _simulator_faults(vendor: str, *, config: Mapping[str, Any] | None = None,
                      devices: Iterable[Mapping[str, Any]] | None = None) -> tuple[set[str], dict[str, list[str]]]:
    """The modes the simulator accepts, and its own modes with the requirement IDs they break."""
    subject = loading.load_subject(vendor)
    factory = subject.simulator_factory()
    if factory is None:
        raise loading.PluginError(f"{vendor} registers no simulator")
    run_id = uuid.uuid4().hex[:10]
    # the same placeholders a target file may hold ({free_port}, {run_id}, ${ENV})
    config, devices = expand(dict(config or {}), "config", run_id, []), expand(list(devices or []), "devices", run_id, [])
    given = Target(config=dict(config or {}), devices=parse_devices(list(devices), "devices") if devices else [])
    from hub_conformance.params import resolve

    values = {k: v.value for k, v in resolve(True, None, fast_params()).items()}
    tgt = loading.resolve_target(subject, given, True, run_id, values)
    schema = subject.manifest.config_schema
    eff = schema().load(dict(tgt.config)) if schema is not None else dict(tgt.config)
    from hub.vendor import DeviceRef

    refs = [DeviceRef(id=d.id, address=d.address, kind=d.kind) for d in tgt.devices]
    return quality.probe_faults(factory, eff, refs, extra=tgt.fault_modes), dict(tgt.fault_modes)


def failing(report: Mapping[str, Any]) -> set[str]:
    return {q["id"] for q in report["requirements"] if q["result"] in NOT_PASSING}


def passing(report: Mapping[str, Any]) -> set[str]:
    return {q["id"] for q in report["requirements"] if q["result"] == "pass"}


def _messages(report: Mapping[str, Any], ids: Iterable[str]) -> list[str]:
    by_id = {q["id"]: q for q in report["requirements"]}
    return [f"{i}: {(by_id[i].get('messages') or [by_id[i]['result']])[0]}" for i in sorted(ids) if i in by_id]


@dataclass
class ModeOutcome:
    mode: str
    supported: bool
    expected: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    report_dir: Path | None = None
    report: dict[str, Any] | None = None
    problem: str | None = None

    @property
    def missed(self) -> set[str]:
        """Requirements the fault should break that the suite did not report."""
        return self.expected - self.failing

    @property
    def extra(self) -> set[str]:
        """Requirements reported failing that the fault does not explain."""
        return self.failing - self.expected

    @property
    def ok(self) -> bool:
        return not self.supported or (self.problem is None and not self.missed and not self.extra)


@dataclass
class FaultMatrix:
    vendor: str
    clean: runner.RunResult | None
    modes: dict[str, ModeOutcome]
    applicable: set[str]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unsupported(self) -> set[str]:
        return {m for m, o in self.modes.items() if not o.supported}

    def table(self) -> str:
        """The matrix as Markdown: fault mode, expected, caught, verdict."""
        lines = [f"Fault matrix of {self.vendor}", "",
                 "| fault mode | expected to fail | reported failing | verdict |", "|---|---|---|---|"]
        for mode, o in self.modes.items():
            if not o.supported:
                lines.append(f"| {mode} | — | — | simulator cannot imitate it |")
                continue
            verdict = "ok" if o.ok else (o.problem or f"missed {sorted(o.missed)}, extra {sorted(o.extra)}")
            lines.append(f"| {mode} | {', '.join(sorted(o.expected)) or '—'} | {', '.join(sorted(o.failing)) or '—'} "
                         f"| {verdict} |")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        if self.problems:
            raise AssertionError("the conformance suite did not prove itself:\n  " + "\n  ".join(self.problems)
                                 + "\n\n" + self.table())


def run_fault_matrix(vendor: str, config: Mapping[str, Any] | None = None, *, report_root: Path,
                     devices: Iterable[Mapping[str, Any]] | None = None, modes: Iterable[str] | None = None,
                     expected: Mapping[str, Iterable[str]] | None = None, params: Mapping[str, float] | None = None,
                     mode: str = "strict", jobs: int = 4, timeout: float = 900,
                     target: Path | None = None) -> FaultMatrix:
    """Run the clean simulator and every fault mode it supports (in parallel, `jobs` at a time)
    and compare each run with the expected failures (fault_map.yaml unless `expected` is given),
    restricted to what applies to this plugin: the requirements the clean run passes."""
    report_root = Path(report_root)
    devices = list(devices) if devices is not None else None
    supported, own = _simulator_faults(vendor, config=config, devices=devices)
    wanted = list(modes) if modes is not None else [*FAULT_MODES, *own]
    unknown = sorted(set(wanted) - set(FAULT_MODES) - set(own))
    if unknown:
        raise ValueError(f"not fault modes: {', '.join(unknown)}")
    # the simulator's own modes are proven against the IDs it declared for them
    table = {m: frozenset(ids) for m, ids in {**expected_failures(), **own, **(expected or {})}.items()}
    # Slowest first (silent devices make every check wait its timeout), so parallel runs end together.
    slow_first = ("silent", "acks_without_acting", "rejects_all")
    runs = [m for m in slow_first if m in wanted and m in supported] + ["clean"] + [
        m for m in wanted if m in supported and m not in slow_first]

    def one(name: str) -> runner.RunResult:
        if target is not None:  # a target file also carries media and parameters for every run
            return run_suite(vendor, report_dir=report_root / name, target=target,
                             faults=() if name == "clean" else (name,), mode=mode, params=params, timeout=timeout)
        return run_suite(vendor, report_dir=report_root / name, config=config, devices=devices,
                         faults=() if name == "clean" else (name,), mode=mode, params=params, timeout=timeout)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = dict(zip(runs, pool.map(one, runs), strict=True))
    problems: list[str] = []
    clean = results["clean"]
    applicable: set[str] = set()
    unverified: set[str] = set()
    if clean.report is None:
        problems.append(f"the clean run did not produce a report: {runner.usage_error(clean.output)}")
    else:
        applicable = passing(clean.report)
        unverified = {q["id"] for q in clean.report["requirements"] if q["result"] in ("skipped", "not_run")}
        bad = failing(clean.report)
        if bad:
            problems.append("the clean simulator fails: " + "; ".join(_messages(clean.report, bad)))
    outcomes: dict[str, ModeOutcome] = {}
    for m in wanted:
        if m not in supported:
            outcomes[m] = ModeOutcome(m, supported=False)
            continue
        res = results[m]
        o = ModeOutcome(m, True, expected=set(table.get(m, ())) & applicable, report_dir=res.report_dir,
                        report=res.report)
        if m not in table:
            o.problem = f"no expected failures are listed for {m}"
        if res.report is None:
            o.problem = f"no report: {runner.usage_error(res.output)}"
        else:
            o.failing = failing(res.report)
        outcomes[m] = o
        blind = set(table.get(m, ())) & unverified
        if not o.expected and blind and o.problem is None:
            # The simulator imitates the fault but nothing it breaks could be verified: passing
            # here would prove nothing, which is the failure this module exists to prevent.
            o.problem = (f"the simulator imitates it, but none of the requirements it breaks could be verified "
                         f"on the clean simulator ({', '.join(sorted(blind))}: not verified)")
        if o.problem:
            problems.append(f"{m}: {o.problem}")
        if o.missed:
            problems.append(f"{m}: the suite missed the fault — expected to fail but did not: "
                            f"{', '.join(sorted(o.missed))}")
        if o.extra and o.report is not None:
            problems.append(f"{m}: failing beyond what the fault explains: " + "; ".join(_messages(o.report, o.extra)))
    return FaultMatrix(vendor, clean, outcomes, applicable, problems)
