"""Only how the suite is spread over xdist workers (`make test`: -n 6 --dist loadfile).

Each test module stays on one worker: its module fixtures (a fleet of simulators, a broker,
certification runs) are set up once and its tests may share what it starts. The tests named in
SPREAD are scheduled one by one instead, so that these long ones (a vendor's fault matrix, some
minutes each) run on several workers at once rather than one after another in their module's."""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import pytest

# No test may send traffic beyond loopback: the hub's default speech chain asks gTTS (an internet
# service) first, so every test process (and the hub commands they start) speaks offline unless a
# test names its own chain, e.g. gTTS pointed at its loopback stand-in.
os.environ.setdefault("HUB_SPEECH_PROVIDERS", "espeak_ng")

def pytest_configure(config: pytest.Config) -> None:
    from hub.testing import guard_logger_registry

    guard_logger_registry()  # the hub's threads name loggers while pytest's log capture walks them


SPREAD = frozenset({"conformance/tests/test_conformance_vendors.py::test_vendor_fault_matrix"})


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own; optional: -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SpreadFirst(OrderedDict):  # type: ignore[type-arg]
        """xdist hands out scopes in this queue's order, largest module first; the spread tests are
        single-test scopes, so they would start last and run on after everything else has ended.
        They go first instead, in the order collected (their module lists them slowest first)."""

        def __setitem__(self, scope: str, nodeids: Any) -> None:
            super().__setitem__(scope, nodeids)
            if scope.split("[", 1)[0] in SPREAD:
                for key in reversed([k for k in self if k.split("[", 1)[0] in SPREAD]):
                    self.move_to_end(key, last=False)

    class ModulesTogetherButSpread(LoadFileScheduling):
        def __init__(self, config: pytest.Config, log: Any = None) -> None:
            super().__init__(config, log)
            self.workqueue = SpreadFirst()

        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("[", 1)[0] in SPREAD:
                return nodeid
            return super()._split_scope(nodeid)

    return ModulesTogetherButSpread(config, log)
