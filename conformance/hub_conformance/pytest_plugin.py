"""The conformance suite as a pytest plugin.

Load it with `-p hub_conformance.pytest_plugin` (`hub certify` does) and point pytest at the
check modules in hub_conformance/suite. It is deliberately not a `pytest11` entry point: it
would then be loaded into every pytest run in the environment, including the hub's own tests.

Checks are plain functions named `check_*` tagged with one requirement:

    @pytest.mark.requirement("VOL-01")
    def check_volume_is_carried_out(dut, device): ...

Gating happens before a check runs: when the plugin's manifest lacks the requirement's
capability, or no device of the run declares it, the check is reported `not_applicable`; the
check itself may skip with a reason when something it needs is missing (a witness, link
control, credentials), which is reported as `skipped` (not verified). Markers:
  requirement(ID)   the catalogue entry the check is evidence for (exactly one)
  needs(*caps)      capabilities the check needs besides the gating one, on the same device
  kind(name)        only devices of this kind
  every_device      the check gets all applicable devices (`devices`) instead of one (`device`)
  static            the check needs no running hub or device (`cert` only)
"""
from __future__ import annotations

import importlib.metadata as md
import platform
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from hub.capabilities import VOCABULARY_VERSION
from hub.fleet.registry import default_capabilities
from hub.simulation import FAULT_MODES, UnsupportedFault
from hub.vendor_traits import traits_of

import hub_conformance
from hub_conformance import catalogue, loading, params, quality, reports, security
from hub_conformance import target as target_mod
from hub_conformance.dut import DeviceUnderTest, TestDevice
from hub_conformance.results import NA_PREFIX, RESULTS, CheckRecord, aggregate, verdict

SKIP_PREFIX = "not verified: "


class RunContext:
    """Everything one certification run knows, built from the command-line options."""

    def __init__(self, config: pytest.Config) -> None:
        opt = config.getoption
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.run_id: str = opt("hub_run_id") or uuid.uuid4().hex[:10]
        self.mode: str = opt("hub_mode")
        self.simulator: bool = bool(opt("hub_simulator"))
        self.report_dir = Path(opt("hub_report_dir")) if opt("hub_report_dir") else None
        self.catalogue = catalogue.load()
        self.subject = loading.load_subject(opt("hub_plugin"))
        target_file = target_mod.load(opt("hub_target"), self.run_id) if opt("hub_target") else None
        if target_file and target_file.vendor and target_file.vendor != self.subject.vendor:
            raise target_mod.TargetError(
                f"{target_file.path}: vendor {target_file.vendor} is not {self.subject.vendor}")
        cli_params = params.parse_assignments(opt("hub_param") or [])
        declared = traits_of(self.subject.manifest)
        self.params = params.resolve(self.simulator, target_file.parameters if target_file else {}, cli_params,
                                     {"level_step": declared.level_step})
        self.target = loading.resolve_target(self.subject, target_file, self.simulator, self.run_id,
                                             {k: v.value for k, v in self.params.items()})
        self.device_caps: dict[str, frozenset[str]] = {}
        for d in self.target.devices:
            caps = d.capabilities if d.capabilities is not None else default_capabilities(
                self.subject.plugins, self.subject.vendor, d.kind)
            self.device_caps[d.id] = frozenset(caps)
        self.faults = self._faults(opt("hub_fault") or [])
        self.records: dict[str, CheckRecord] = {}
        self.dut: DeviceUnderTest | None = None
        self.report: dict[str, Any] | None = None

    def _faults(self, specs: list[str]) -> dict[str, set[str]]:
        """--hub-fault MODE (every device) or ADDRESS=MODE (one device)."""
        if specs and not self.simulator:
            raise pytest.UsageError("--hub-fault injects faults into a simulator; it needs --hub-simulator")
        out: dict[str, set[str]] = {}
        known = [*FAULT_MODES, *self.target.fault_modes]  # the closed vocabulary and the simulator's own
        for spec in specs:
            address, sep, mode = spec.rpartition("=")
            if mode not in known:
                raise pytest.UsageError(f"--hub-fault {spec}: {mode} is not a fault mode ({', '.join(known)})")
            addresses = [address] if sep else [d.address for d in self.target.devices]
            for a in addresses:
                out.setdefault(a, set()).add(mode)
        if out:
            self._check_imitable(out)
        return out

    def _check_imitable(self, faults: dict[str, set[str]]) -> None:
        """A fault the simulator cannot imitate means the run cannot show anything: refuse it now
        (exit 2, "could not run") rather than let every check error on the simulator's refusal."""
        factory = self.subject.simulator_factory()
        if factory is None:
            raise pytest.UsageError(f"--hub-fault: {self.subject.vendor} registers no simulator")
        refs = [self.test_device(d.id).ref() for d in self.target.devices]
        try:
            sim = factory(self.effective_config(), refs, faults)
        except UnsupportedFault as exc:
            modes = sorted(set().union(*faults.values()))
            raise pytest.UsageError(f"--hub-fault {', '.join(modes)}: the {self.subject.vendor} simulator cannot "
                                    f"imitate it ({exc})") from None
        close = getattr(sim, "close", None)
        if callable(close):
            close()

    def effective_config(self) -> dict[str, Any]:
        schema = self.subject.manifest.config_schema
        return schema().load(dict(self.target.config)) if schema is not None else dict(self.target.config)

    def test_device(self, device_id: str) -> TestDevice:
        d = next(x for x in self.target.devices if x.id == device_id)
        return TestDevice(d.id, d.address, d.kind, self.device_caps[d.id], dict(d.config))


_CTX = pytest.StashKey[RunContext]()
_DEVICES = pytest.StashKey[list[str]]()


def context(config: pytest.Config) -> RunContext | None:
    return config.stash.get(_CTX, None)


# -- options and configuration --------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("hub-conformance", "hub conformance suite (normally run through `hub certify`)")
    g.addoption("--hub-plugin", dest="hub_plugin", help="vendor name of the plugin to certify")
    g.addoption("--hub-simulator", dest="hub_simulator", action="store_true",
                help="drive the plugin's registered simulator")
    g.addoption("--hub-target", dest="hub_target", help="target YAML file (config, devices, media)")
    g.addoption("--hub-mode", dest="hub_mode", choices=params.MODES, default="strict")
    g.addoption("--hub-report-dir", dest="hub_report_dir", help="where to write report.json and report.html")
    g.addoption("--hub-param", dest="hub_param", action="append", help="suite parameter NAME=VALUE")
    g.addoption("--hub-fault", dest="hub_fault", action="append",
                help="inject a fault mode into the simulator: MODE (every device) or ADDRESS=MODE")
    g.addoption("--hub-run-id", dest="hub_run_id", help="unique id of this run (topic prefixes, queues)")


def pytest_configure(config: pytest.Config) -> None:
    from hub.testing import guard_logger_registry

    guard_logger_registry()  # the hub runs threads that name loggers while pytest walks them
    for line in ("requirement(id): the catalogue requirement this check is evidence for",
                 "needs(*capabilities): capabilities needed besides the requirement's own",
                 "kind(name): only devices of this kind",
                 "every_device: the check receives every applicable device",
                 "static: the check needs no running hub or device"):
        config.addinivalue_line("markers", line)
    if not config.getoption("hub_plugin"):
        return
    try:
        ctx = RunContext(config)
    except (target_mod.TargetError, params.ParameterError, catalogue.CatalogueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    except Exception as exc:  # plugin not installed, broken import, bad simulator setup
        raise pytest.UsageError(f"{type(exc).__name__}: {exc}") from None
    config.stash[_CTX] = ctx


def requirement_of(item: pytest.Item) -> str:
    marks = list(item.iter_markers("requirement"))
    if len(marks) != 1 or len(marks[0].args) != 1:
        raise pytest.UsageError(f"{item.nodeid}: a check must carry exactly one requirement marker with one id")
    return str(marks[0].args[0])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    ctx = context(config)
    for item in items:
        rid = requirement_of(item)
        if ctx is not None and rid not in ctx.catalogue.requirements:
            raise pytest.UsageError(f"{item.nodeid}: requirement {rid} is not in the catalogue")


# -- gating -----------------------------------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    ctx = context(item.config)
    if ctx is None:
        return
    req = ctx.catalogue[requirement_of(item)]
    declared = ctx.subject.manifest.capabilities
    if req.capability and req.capability not in declared:
        pytest.skip(f"{NA_PREFIX}the plugin does not declare {req.capability}")
    if item.get_closest_marker("static"):
        return
    gate = {req.capability} if req.capability else set()
    needs = set()
    for m in item.iter_markers("needs"):
        needs.update(m.args)
    kind_mark = item.get_closest_marker("kind")
    kind = kind_mark.args[0] if kind_mark else None
    candidates = [d for d in ctx.target.devices
                  if gate <= ctx.device_caps[d.id] and (kind is None or d.kind == kind)]
    if not candidates:
        what = f"{kind} device" if kind else "device"
        have = f" declaring {req.capability}" if req.capability else ""
        pytest.skip(f"{NA_PREFIX}no {what}{have} in this run")
    usable = [d for d in candidates if needs <= ctx.device_caps[d.id]]
    if not usable:
        lacking = sorted(needs - ctx.device_caps[candidates[0].id])
        pytest.skip(f"{SKIP_PREFIX}cannot be exercised: it also needs {', '.join(lacking)} on the same device")
    item.stash[_DEVICES] = [d.id for d in usable]


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cert(request: pytest.FixtureRequest) -> RunContext:
    ctx = context(request.config)
    if ctx is None:
        pytest.fail("the conformance checks run through `hub certify` (or pytest --hub-plugin NAME)")
    return ctx


@pytest.fixture(scope="session")
def dut(cert: RunContext) -> Any:
    d = DeviceUnderTest(cert.subject, cert.target, cert.params, cert.mode, cert.simulator, cert.faults, cert.run_id)
    cert.dut = d
    try:
        d.start()
    except BaseException:
        d.stop()
        raise
    yield d
    d.stop()


@pytest.fixture
def device(request: pytest.FixtureRequest, cert: RunContext, dut: DeviceUnderTest) -> TestDevice:
    dev = cert.test_device(request.node.stash[_DEVICES][0])
    dut.reset(dev)
    return dev


@pytest.fixture
def devices(request: pytest.FixtureRequest, cert: RunContext, dut: DeviceUnderTest) -> list[TestDevice]:
    return [cert.test_device(i) for i in request.node.stash[_DEVICES]]


@pytest.fixture(autouse=True)
def _fresh_notes(request: pytest.FixtureRequest) -> None:
    ctx = context(request.config)
    if ctx is not None and ctx.dut is not None:
        ctx.dut.notes.clear()


# -- recording results ------------------------------------------------------------------------------
def _message(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str:
    if excinfo is None:
        return ""
    exc = excinfo.value
    text = getattr(exc, "msg", None) if isinstance(exc, pytest.skip.Exception) else None
    text = text if text is not None else str(exc)
    if not isinstance(exc, AssertionError) and not isinstance(exc, pytest.skip.Exception):
        text = f"{type(exc).__name__}: {text}"
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return text[:1000]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    rep = outcome.get_result()
    ctx = context(item.config)
    if ctx is None:
        return
    rid = requirement_of(item)
    rec = ctx.records.get(item.nodeid)
    if rec is None:
        devices = item.stash.get(_DEVICES, None)
        rec = ctx.records[item.nodeid] = CheckRecord(item.nodeid, item.name, rid,
                                                     device=devices[0] if devices else None)
        item.user_properties.append(("requirement", rid))
    if rep.when == "setup":
        if rep.skipped:
            msg = _message(call.excinfo)
            if msg.startswith(NA_PREFIX):
                rec.result, rec.message = "not_applicable", msg[len(NA_PREFIX):]
            else:
                rec.result, rec.message = "skipped", msg.removeprefix(SKIP_PREFIX)
        elif rep.failed:
            rec.result, rec.message = "error", f"setup: {_message(call.excinfo)}"
        if not rep.passed:
            item.user_properties.append(("result", rec.result))
    elif rep.when == "call":
        rec.duration_s = call.duration
        if ctx.dut is not None:
            rec.notes = list(ctx.dut.notes)
        if rep.passed:
            rec.result, rec.message = "pass", None
        elif rep.skipped:  # a check may find out only as it runs that its requirement does not apply
            msg = _message(call.excinfo)
            if msg.startswith(NA_PREFIX):
                rec.result, rec.message = "not_applicable", msg[len(NA_PREFIX):]
            else:
                rec.result, rec.message = "skipped", msg.removeprefix(SKIP_PREFIX)
        elif call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
            rec.result, rec.message = "fail", _message(call.excinfo)
        else:
            rec.result, rec.message = "error", _message(call.excinfo)
        item.user_properties.append(("result", rec.result))
    elif rep.when == "teardown" and rep.failed and rec.result == "pass":
        rec.result, rec.message = "error", f"teardown: {_message(call.excinfo)}"


# -- the report ---------------------------------------------------------------------------------------
def build_report(ctx: RunContext) -> dict[str, Any]:
    cat = ctx.catalogue
    by_req: dict[str, list[CheckRecord]] = {}
    for rec in ctx.records.values():
        by_req.setdefault(rec.requirement, []).append(rec)
    reqs = []
    for r in cat:
        recs = by_req.get(r.id, [])
        result, messages = aggregate(recs)
        entry = r.to_dict(cat)
        entry.update({"result": result, "messages": messages, "checks": [c.to_dict() for c in recs],
                      "duration_s": round(sum(c.duration_s for c in recs), 3)})
        reqs.append(entry)
    counts = {k: sum(1 for q in reqs if q["result"] == k) for k in RESULTS}
    outcome, reasons, warnings = verdict(reqs, ctx.mode)
    tolerance = params.TOLERANCE[ctx.mode]
    schema = ctx.subject.manifest.config_schema
    factory = ctx.subject.simulator_factory()

    def supported_faults() -> set[str] | None:
        if factory is None:
            return None
        devices = [ctx.test_device(d.id).ref() for d in ctx.target.devices]
        return quality.probe_faults(factory, ctx.effective_config(), devices)

    facts = {"adapter_cls": ctx.subject.adapter_cls, "simulator_factory": factory,
             "distribution": ctx.subject.distribution, "mode": ctx.mode, "supported_faults": supported_faults,
             "quality_file": quality.find_quality_file(ctx.subject.adapter_cls.__module__)}
    try:
        tier = quality.evaluate(facts, {q["id"]: q["result"] for q in reqs}, ctx.mode)
    except Exception as exc:  # a broken quality file must not cost the vendor the whole report
        tier = {"reached": None, "quality_file": None, "problems": [f"{type(exc).__name__}: {exc}"], "tiers": {}}
    dut = ctx.dut
    return {
        "report_version": reports.REPORT_VERSION,
        "plugin": ctx.subject.describe(),
        "suite": {"name": hub_conformance.SUITE_NAME, "version": hub_conformance.__version__},
        "catalogue": {"version": cat.version, "entries": len(cat), "evidence_counts": cat.counts(),
                      "capability_vocabulary": VOCABULARY_VERSION},
        "mode": ctx.mode,
        "tolerance": tolerance,
        "run_id": ctx.run_id,
        "started_at": ctx.started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - ctx.started, 1),
        "verdict": outcome,
        "verdict_reasons": reasons,
        "warnings": warnings,
        "summary": counts,
        "parameters": {k: v.to_dict(tolerance) for k, v in ctx.params.items()},
        "target": {
            "simulator": ctx.simulator,
            "file": ctx.target.path,
            "config": security.redact(ctx.target.config, schema),
            "devices": [{"id": d.id, "address": d.address, "kind": d.kind,
                         "capabilities": sorted(ctx.device_caps[d.id])} for d in ctx.target.devices],
            "faults": {a: sorted(m) for a, m in ctx.faults.items()},
            "witness": dut.witness.label if dut is not None and dut.witness is not None else None,
            "link_control": dut.link.label if dut is not None and dut.link is not None else None,
        },
        "requirements": reqs,
        "quality": tier,
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "hub_core": _version("hub-core"), "pytest": pytest.__version__},
    }


def _version(dist: str) -> str | None:
    try:
        return str(md.version(dist))
    except md.PackageNotFoundError:
        return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ctx = context(session.config)
    if ctx is None:
        return
    ctx.report = build_report(ctx)
    if ctx.report_dir is not None:
        reports.write_json(ctx.report, ctx.report_dir)
        reports.write_html(ctx.report, ctx.report_dir)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    ctx = context(config)
    if ctx is None or ctx.report is None:
        return
    terminalreporter.section("hub conformance")
    terminalreporter.write_line(reports.summary_text(ctx.report, ctx.report_dir))
