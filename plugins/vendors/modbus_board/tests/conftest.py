"""Fixtures for the modbus_board tests: simulators and adapters that are always stopped."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import threading
import time

import pytest

from hub.testing_fixtures import devices_on_loopback, sink  # noqa: F401 - fixtures

from hub_modbus_board.adapter import ModbusBoardAdapter
from hub_modbus_board.board import UnitSpec
from hub_modbus_board.simulator import BoardSim
from modbus_board_helpers import FAST, free_port

MakeSim = Callable[..., BoardSim]
MakeAdapter = Callable[..., ModbusBoardAdapter]


OUR_THREADS = ("board-sim-", "modbus_board-")
_devices_on_loopback = devices_on_loopback()  # adapters built by hand reach the simulators


@pytest.fixture(autouse=True)
def _no_threads_left_behind() -> Iterator[None]:
    """Every simulator, poller and send pool a test starts must be gone when it ends."""
    yield

    def ours() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]

    deadline = time.monotonic() + 10
    while ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ours() == [], f"threads left running: {ours()}"


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    sims: list[BoardSim] = []

    def make(units: list[int | UnitSpec] | None = None, port: int = 0, start: bool = True) -> BoardSim:
        # A restarted board must get its port back: never one from the ephemeral range (hub/ports.py)
        sim = BoardSim(units or [1], host="127.0.0.1", port=port or free_port())
        sims.append(sim)
        return sim.start() if start else sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def make_adapter() -> Iterator[MakeAdapter]:
    adapters: list[ModbusBoardAdapter] = []

    def make(**config: Any) -> ModbusBoardAdapter:
        adapter = ModbusBoardAdapter({**FAST, **config})
        adapters.append(adapter)
        adapter.open()
        return adapter

    yield make
    for adapter in adapters:
        adapter.close()
