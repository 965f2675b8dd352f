"""The scrape endpoint: its credentials, its labels, and figures read from the database and Redis
at each scrape (queue depth, ingest lag, source health), with a part that cannot be read said so."""
from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.output import OutputError
from hub.ports import free_port
from hub.reports.output_config import OutputConfigError, parse_entry
from hub.reports.output_context import HubOutputContext
from hub.runtime import Runtime
from hub.store.content_tables import SourceStatus
from hub.store.db import utcnow
from hub_output_prometheus.plugin import PrometheusOutput

from prometheus_helpers import COMMUNE_X, DISTRICT, PROVINCE, get, seed_fleet


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == name]


@pytest.fixture
def serving(hub_rt: Runtime) -> Iterator[PrometheusOutput]:
    seed_fleet(hub_rt)
    out = PrometheusOutput.configured({"port": free_port(), "username": "prometheus",
                                       "password": "mat-khau-dai-du-12"})
    out.open(HubOutputContext(hub_rt))
    yield out
    out.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def scrape(out: PrometheusOutput) -> str:
    status, body = get(out.url, basic("prometheus", "mat-khau-dai-du-12"))
    assert status == 200, body
    return body


def test_credentials_are_required_and_a_wrong_password_or_path_is_refused(serving: PrometheusOutput) -> None:
    assert get(serving.url)[0] == 401
    assert get(serving.url, basic("prometheus", "sai-mat-khau-roi"))[0] == 401
    assert get(serving.url, {"Authorization": "Bearer mat-khau-dai-du-12"})[0] == 401
    assert get(serving.url.replace("/metrics", "/other"), basic("prometheus", "mat-khau-dai-du-12"))[0] == 404
    assert "hub_devices" in scrape(serving)
    assert serving.health().ok and "serving http://127.0.0.1:" in serving.health().detail


def test_listening_beyond_loopback_needs_credentials(hub_rt: Runtime) -> None:
    with pytest.raises(OutputConfigError) as exc:
        parse_entry({"name": "metrics", "plugin": "prometheus", "config": {"host": "0.0.0.0"}},
                    "outputs.yaml: output", hub_rt.plugins)
    assert str(exc.value).startswith("outputs.yaml: output metrics: output prometheus: configuration: host: "
                                     "listening beyond loopback needs bearer_token")
    with pytest.raises(OutputError, match="username and password go together"):
        PrometheusOutput.configured({"username": "prometheus"})
    PrometheusOutput.configured({"host": "0.0.0.0", "bearer_token": "x" * 32})  # with a token it may


def test_areas_are_province_and_district_labels_unless_communes_are_asked_for(serving: PrometheusOutput) -> None:
    devices = samples(scrape(serving), "hub_devices")
    assert all(set(labels) == {"state", "enabled", "kind", "vendor", "province", "district"} for labels, _ in devices)
    online = sum(v for labels, v in devices if labels["state"] == "online" and labels["district"] == DISTRICT)
    assert online == 4 and sum(v for _, v in devices) == 8
    assert {labels["province"] for labels, _ in devices} == {PROVINCE}


def test_queue_depth_ingest_lag_and_source_health_are_read_at_each_scrape(
        hub_rt: Runtime, serving: PrometheusOutput) -> None:
    queue = hub_rt.queue("normal")
    try:
        queue.enqueue("hub.delivery.jobs.send_batch", args=(["nothing"],))
        queue.enqueue("hub.delivery.jobs.send_batch", args=(["nothing"],))
        with hub_rt.db.session() as s:
            s.add(SourceStatus(name="tinh-rss", plugin="rss", failures=0, last_success_at=utcnow()))
            s.add(SourceStatus(name="cap-kttv", plugin="cap", failures=3, last_error="HTTP 503"))
        text = scrape(serving)
        depth = {(lb["queue"], lb["status"]): v for lb, v in samples(text, "hub_queue_jobs")}
        assert depth[(queue.name, "waiting")] == 2 and depth[(hub_rt.queue_name("emergency"), "waiting")] == 0
        assert {lb["source"]: v for lb, v in samples(text, "hub_source_up")} == {"tinh-rss": 1, "cap-kttv": 0}
        assert {lb["source"]: v for lb, v in samples(text, "hub_source_failures")}["cap-kttv"] == 3
        assert 29 <= samples(text, "hub_ingest_last_report_age_seconds")[0][1] < 120  # newest report: 30 s ago
        assert samples(text, "hub_deliveries_unacked")[0][1] == 1
        queue.empty()
        depth = {(lb["queue"], lb["status"]): v for lb, v in samples(scrape(serving), "hub_queue_jobs")}
        assert depth[(queue.name, "waiting")] == 0  # computed again, not counted up
    finally:
        queue.empty()


def test_a_part_the_database_cannot_give_is_said_so_and_the_rest_is_served(
        hub_rt: Runtime, serving: PrometheusOutput, tmp_path: Path) -> None:
    hub_rt.db.dispose()
    Path(tmp_path / "hub.sqlite3").unlink()  # the database is gone: its tables with it
    text = scrape(serving)
    up = {lb["part"]: v for lb, v in samples(text, "hub_metrics_part_up")}
    assert up == {"devices": 0, "deliveries": 0, "ingest": 0, "sources": 0, "queues": 1}
    assert samples(text, "hub_queue_jobs")  # Redis still answers
    health = serving.health()
    assert not health.ok and "could not read devices" in health.detail
