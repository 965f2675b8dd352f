"""Done when (issue 21): a real Prometheus scrapes the metrics endpoint and a query through its
HTTP API returns the expected device counts of a seeded fleet."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.ports import free_port
from hub.reports.outputs import OutputRunner
from hub.runtime import Runtime
from hub.testing import scaled, wait_until

from prometheus_helpers import COMMUNE_X, COMMUNE_Y, DISTRICT, PROVINCE, PrometheusServer, get, seed_fleet, write_outputs

TOKEN = "prometheus-test-token-0123456789"

pytestmark = pytest.mark.slow


def by_state(result: list[dict]) -> dict[str, float]:
    return {r["metric"]["state"]: float(r["value"][1]) for r in result}


def test_prometheus_scrapes_the_device_counts_of_a_seeded_fleet(hub_rt: Runtime, tmp_path: Path) -> None:
    seed_fleet(hub_rt)
    port = free_port()
    write_outputs(hub_rt, port=port, bearer_token=TOKEN, commune_labels=True)
    runner = OutputRunner(hub_rt)
    runner.start()
    try:
        assert wait_until(lambda: "metrics" in runner.workers and runner.workers["metrics"].opened, scaled(10))
        assert get(f"http://127.0.0.1:{port}/metrics")[0] == 401  # the token is required
        with PrometheusServer(tmp_path, f"127.0.0.1:{port}", bearer_token=TOKEN) as prom:
            expr = f'sum by (state) (hub_devices{{commune="{COMMUNE_X}"}})'
            assert wait_until(lambda: by_state(prom.query(expr)) == {"online": 3, "offline": 2}, scaled(30), 0.5), (
                prom.query(expr), prom.targets())
            assert prom.targets()[0]["health"] == "up"
            assert by_state(prom.query(f'sum by (state) (hub_devices{{commune="{COMMUNE_Y}"}})')) == {
                "online": 1, "degraded": 1, "unknown": 1}
            # the district and the province add up their communes
            assert by_state(prom.query(f'sum by (state) (hub_devices{{district="{DISTRICT}"}})')) == {
                "online": 4, "offline": 2, "degraded": 1, "unknown": 1}
            assert prom.query(f'sum(hub_devices{{province="{PROVINCE}"}})')[0]["value"][1] == "8"
            names = prom.query(f'hub_area_info{{code="{COMMUNE_X}"}}')
            assert names[0]["metric"]["name"] == "Phường 1"
            acked = prom.query('hub_deliveries{state="acked", class="emergency"}')
            assert acked[0]["value"][1] == "2"
            assert prom.query('min(hub_metrics_part_up)')[0]["value"][1] == "1"  # every part could be read
    finally:
        runner.stop()
    assert get_refused(port), "the endpoint still answers after the runner stopped"


def get_refused(port: int) -> bool:
    try:
        get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except OSError:
        return True
    return False
