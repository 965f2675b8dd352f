"""Pushing a period's statistics to the national system's simulator on loopback."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hub.output import OutputError
from hub.reports.output_config import OutputConfig
from hub.reports.output_worker import OutputWorker

from hub_output_national_push.plugin import NationalPushOutput
from hub_output_opendata.rows import field_names
from hub_output_opendata.testing import NOW, StatisticsContext, province_statistics
from hub_source_national.simulator import REPORTS_PATH, Simulator

Make = Callable[..., NationalPushOutput]
AUGUST = "long-an/month:2025-08"


def test_last_month_reaches_the_national_system(sim: Simulator, make_output: Make) -> None:
    make_output().run_periodic(NOW)
    report = sim.reports[AUGUST]
    assert report["period"] == {"id": "month:2025-08", "kind": "month", "start": "2025-08-01",
                                "end": "2025-08-31", "timezone": "Asia/Ho_Chi_Minh"}
    assert [a["area_name"] for a in report["areas"]] == ["Tỉnh Long An", "Huyện Đức Hòa", "Xã Hựu Thạnh",
                                                          "Thị trấn Hậu Nghĩa"]
    assert report["areas"][0]["bulletins"] == 21 and report["areas"][0]["minutes_broadcast"] == 156.75
    # the open-data table's rows, nothing more: no name of a person, no device address
    assert all(list(a) == list(field_names()) for a in report["areas"])
    assert "Nguyễn Văn An" not in str(report) and "10.80.3.7" not in str(report)


def test_a_period_is_received_once_even_when_pushed_twice(sim: Simulator, make_output: Make,
                                                          tmp_path: Path) -> None:
    out = make_output()
    out.run_periodic(NOW)
    out.run_periodic(NOW)  # the output remembers: not sent again
    assert sim.report_posts == [(AUGUST, 201)]
    # a second hub process, or one whose state was lost, sends it again: the receiver keeps one
    again = make_output(state_dir=str(tmp_path / "other-state"))
    again.run_periodic(NOW)
    assert sim.report_posts == [(AUGUST, 201), (AUGUST, 200)]
    assert list(sim.reports) == [AUGUST]
    assert again.health().ok  # "already had it" is a success
    # and a restarted output reads what was received from its state folder
    make_output().run_periodic(NOW)
    assert len(sim.report_posts) == 2


def test_each_kind_of_period_and_missed_ones_are_sent(sim: Simulator, make_output: Make) -> None:
    make_output(periods=["day", "week", "month"], catch_up=2).run_periodic(NOW)
    assert sorted(sim.reports) == ["long-an/day:2025-08-31", "long-an/day:2025-09-01", "long-an/month:2025-07",
                                   "long-an/month:2025-08", "long-an/week:2025-W34", "long-an/week:2025-W35"]
    assert [rid for rid, _ in sim.report_posts][0] == "long-an/month:2025-07"  # oldest first


def test_a_503_fails_transiently_and_the_next_try_succeeds(sim: Simulator, make_output: Make) -> None:
    out = make_output()
    sim.report_faults.append(503)
    with pytest.raises(OutputError, match=r"answered HTTP 503 to report long-an/month:2025-08") as caught:
        out.run_periodic(NOW)
    assert caught.value.transient
    assert not out.health().ok
    out.run_periodic(NOW)
    assert sim.report_posts == [(None, 503), (AUGUST, 201)]
    assert out.health().ok


def test_the_outputs_runner_retries_a_503_with_backoff(sim: Simulator, tmp_path: Path,
                                                       context: StatisticsContext) -> None:
    # the hub's own worker (hub.reports.output_worker) runs the output, as `hub outputs run` does
    sim.report_faults.extend([503, 502])

    class SoonNationalPush(NationalPushOutput):  # a first run after 0.2 s, not 10 minutes
        manifest = replace(NationalPushOutput.manifest, interval_s=0.2)

    out = SoonNationalPush.configured({"url": sim.url + REPORTS_PATH, "token": sim.token, "catch_up": 1,
                                       "settle_s": 0, "state_dir": str(tmp_path / "state")})
    worker = OutputWorker(OutputConfig(name="national", plugin="national_push"), out, context,
                          retry_s=(0.1, 0.3, 1.0))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while not sim.reports and time.monotonic() < deadline:  # last month, by the real clock
            time.sleep(0.05)
    finally:
        worker.stop()
    assert [status for _, status in sim.report_posts] == [503, 502, 201]
    assert worker.counts["retried"] == 2 and worker.counts["given_up"] == 0
    assert len(sim.reports) == 1 and worker.status()["last_error"].endswith("(retrying)")


def test_an_unreachable_system_is_transient(tmp_path: Path, context: StatisticsContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    out = NationalPushOutput.configured({"url": f"http://127.0.0.1:{port}{REPORTS_PATH}", "token": "t-national-80",
                                         "state_dir": str(tmp_path), "settle_s": 0, "timeout_s": 2})
    out.open(context)  # type: ignore[arg-type]
    with pytest.raises(OutputError, match=f"cannot reach http://127.0.0.1:{port}/api/v1/reports") as caught:
        out.run_periodic(NOW)
    assert caught.value.transient


def test_a_refused_token_is_named_and_not_retried(sim: Simulator, make_output: Make) -> None:
    out = make_output(token="not-the-token")
    with pytest.raises(OutputError, match=r"HTTP 401 .*missing or invalid token.*refused the token") as caught:
        out.run_periodic(NOW)
    assert not caught.value.transient
    with pytest.raises(OutputError, match="HTTP 401"):
        out.run_periodic(NOW)  # still failing, said again, but nothing sent with the wrong token
    assert sim.report_posts == [(None, 401)] and sim.reports == {}
    assert "HTTP 401" in str(out.health().detail) and not out.health().ok
    make_output().run_periodic(NOW)  # configured anew with the right token: sent
    assert list(sim.reports) == [AUGUST]


def test_a_report_the_receiver_refuses_is_named_and_not_sent_again(sim: Simulator, make_output: Make) -> None:
    def nameless(start: Any, end: Any) -> list[Any]:
        return [replace(s, area_name="") if s.area_code == "27598" else s for s in province_statistics(start, end)]

    out = make_output(StatisticsContext(rows=nameless))
    with pytest.raises(OutputError, match=r"HTTP 422 to report long-an/month:2025-08: areas\[3\].area_name: required"):
        out.run_periodic(NOW)
    out.run_periodic(NOW)  # refused reports are not sent again (nor are others held up)
    assert sim.report_posts == [(None, 422)]
    assert "refused, not sent again" in str(out.health().detail)
