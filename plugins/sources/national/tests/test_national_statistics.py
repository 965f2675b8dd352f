"""Pushing the province's statistics to the national system."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from hub.source import SourceError

from hub_source_national.plugin import NationalSource
from hub_source_national.simulator import Simulator
from national_helpers import config_for

REPORT = {"province": "80", "period": "2025-09", "bulletins_broadcast": 42, "speakers_online": 118,
          "ghi_chú": "Tháng có bão số 3"}


def test_a_report_reaches_the_system(sim: Simulator) -> None:
    NationalSource.configured(config_for(sim)).push_statistics(REPORT)
    assert sim.statistics == [REPORT]


def test_the_push_uses_the_same_authentication(make_sim: Any) -> None:
    sim = make_sim(client_id="tinh-80", client_secret="s3cret")
    auth = {"type": "token_endpoint", "token_url": f"{sim.url}/oauth/token", "client_id": "tinh-80",
            "client_secret": "s3cret"}
    NationalSource.configured(config_for(sim, auth=auth)).push_statistics(REPORT)
    assert sim.statistics == [REPORT]
    with pytest.raises(SourceError, match="authentication refused"):
        NationalSource.configured(config_for(sim, auth={"type": "none"})).push_statistics(REPORT)
    assert len(sim.statistics) == 1


def test_without_a_statistics_path_the_push_says_so(sim: Simulator) -> None:
    with pytest.raises(SourceError, match="statistics_path is not configured"):
        NationalSource.configured(config_for(sim, statistics_path=None)).push_statistics(REPORT)


def test_a_report_must_be_a_json_object(sim: Simulator) -> None:
    source = NationalSource.configured(config_for(sim))
    with pytest.raises(SourceError, match="not storable JSON"):
        source.push_statistics({"rate": float("nan")})
    assert sim.statistics == []


def test_the_simulator_runs_as_a_command(tmp_path: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "hub_source_national.simulator", "--port", str(port),
                             "--token", "t-80", "--items", "4"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert first.startswith(f"national-system simulator on http://127.0.0.1:{port}/api/v1/bulletins")
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/bulletins?size=2",
                                         headers={"Authorization": "Bearer t-80"})
        deadline = time.monotonic() + 10
        with urllib.request.urlopen(request, timeout=deadline - time.monotonic()) as resp:
            assert resp.status == 200
        source = NationalSource.configured({"base_url": f"http://127.0.0.1:{port}/api", "items_path": "v1/bulletins",
                                            "auth": {"type": "bearer", "token": "t-80"},
                                            "paging": {"items_field": "data", "page_size": 2}})
        assert len(source.fetch(None)) == 4
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
