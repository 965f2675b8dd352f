"""From check outcomes to per-requirement results and the run's verdict.

Results of a requirement:
  pass            every check of it that applies passed
  fail            the device or plugin does not meet it (a check's expectation failed)
  error           a check could not run to a conclusion (the adapter raised, setup broke)
  skipped         applicable but not verified in this run (no witness, no link control, no
                  credentials in the configuration…); the reason says what is missing
  not_applicable  the plugin (or every device of the run) does not declare its capability
  not_run         no check of it was selected (-k)
Nothing is ever counted as passed that was not shown to pass.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RESULTS = ("pass", "fail", "error", "skipped", "not_applicable", "not_run")
NOT_PASSING = ("fail", "error")
NA_PREFIX = "not applicable: "


@dataclass
class CheckRecord:
    nodeid: str
    name: str
    requirement: str
    device: str | None = None
    result: str = "not_run"
    message: str | None = None
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "nodeid": self.nodeid, "device": self.device, "result": self.result,
                "message": self.message, "duration_s": round(self.duration_s, 3), "notes": list(self.notes)}


def aggregate(records: Iterable[CheckRecord]) -> tuple[str, list[str]]:
    """A requirement's result from its checks' results, and the messages worth showing."""
    recs = list(records)
    if not recs:
        return "not_run", []
    found = {r.result for r in recs}
    for result in ("fail", "error", "skipped"):
        if result in found:
            return result, [f"{r.name}: {r.message}" if len(recs) > 1 else (r.message or "")
                            for r in recs if r.result == result]
    if found == {"not_applicable"}:
        return "not_applicable", sorted({r.message or "" for r in recs})
    if "not_run" in found and "pass" not in found:
        return "not_run", []
    return "pass", []


def verdict(requirements: list[dict[str, Any]], mode: str) -> tuple[str, list[str], list[str]]:
    """The run's verdict (pass | fail | incomplete), what fails it, and warnings.

    Required requirements fail the run in both modes; recommended ones only in strict mode and
    are warnings in lenient mode. An applicable requirement that was not verified makes the run
    incomplete rather than passed."""
    failing, unverified, warnings = [], [], []
    for r in requirements:
        counts = r["tier"] == "required" or mode == "strict"
        if r["result"] in NOT_PASSING:
            (failing if counts else warnings).append(r["id"])
        elif r["result"] in ("skipped", "not_run"):
            (unverified if counts else warnings).append(r["id"])
    if failing:
        return "fail", failing, warnings
    if unverified:
        return "incomplete", unverified, warnings
    return "pass", [], warnings


EXIT_CODES = {"pass": 0, "fail": 1, "incomplete": 3}
