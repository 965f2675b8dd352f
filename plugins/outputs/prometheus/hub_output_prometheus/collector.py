"""The metrics, computed when Prometheus scrapes: each scrape asks the hub's context (database and
Redis) for the figures as they are, so nothing is counted from events and nothing drifts — a
restart of the runner loses no count, and two runners report the same numbers.

Areas as labels: `province` and `district` (empty where the area data has no district, as in the
two-level list since July 2025), and `commune` when the output is configured with
`commune_labels: true` — thousands of communes multiply the series, so it is a province's choice.
`hub_area_info` gives each code's name and type, to join names in a dashboard.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.output import AreaInfo, OutputContext, OutputError

log = logging.getLogger(__name__)
PROVINCE_TYPES = ("province", "city")  # a centrally governed city is a province-level unit
DISTRICT_TYPES = ("district", "town")
COMMUNE_TYPES = ("commune", "ward", "township")
PARTS = ("devices", "deliveries", "queues", "ingest", "sources")


def area_labels(areas: Sequence[AreaInfo], commune: bool) -> tuple[str, ...]:
    """(province, district[, commune]) codes of a device's areas (top first); "" where it has none."""
    province = next((a.code for a in areas if a.type in PROVINCE_TYPES), areas[0].code if areas else "")
    district = next((a.code for a in areas if a.type in DISTRICT_TYPES), "")
    if not commune:
        return province, district
    return province, district, next((a.code for a in areas if a.type in COMMUNE_TYPES), "")


def _seconds(at: datetime | None) -> float | None:
    return at.timestamp() if at is not None else None


class HubCollector(Collector):
    """A prometheus_client collector over an OutputContext. `last_errors` keeps what the last
    scrape could not read, for the output's health."""

    def __init__(self, context: OutputContext, *, commune_labels: bool = False,
                 deliveries_window_s: float = 86400.0) -> None:
        self.context = context
        self.commune_labels = commune_labels
        self.deliveries_window_s = deliveries_window_s
        self.last_errors: dict[str, str] = {}
        self.last_scrape_at: datetime | None = None

    def describe(self) -> list[Any]:
        return []  # computed at each scrape: nothing to ask the database at registration

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("hub_metrics_part_up", "1 when this part of the hub's figures could be read "
                               "at this scrape, 0 when the database or Redis could not answer", labels=["part"])
        errors: dict[str, str] = {}
        now = self.context.now()
        for part in PARTS:
            try:
                families = list(getattr(self, f"_{part}")(now))
            except OutputError as exc:
                errors[part] = str(exc)
                families = []
            except Exception as exc:  # a bug must cost its part, not the whole scrape
                log.exception("prometheus output: reading %s failed", part)
                errors[part] = f"{type(exc).__name__}: {exc}"
                families = []
            up.add_metric([part], 0.0 if part in errors else 1.0)
            yield from families
        yield up
        self.last_errors, self.last_scrape_at = errors, now

    # -- the parts --------------------------------------------------------------------------------------
    def _devices(self, now: datetime) -> Iterator[Any]:
        area_names = ["province", "district"] + (["commune"] if self.commune_labels else [])
        labels = ["state", "enabled", "kind", "vendor", *area_names]
        counts: Counter[tuple[str, ...]] = Counter()
        shown: dict[str, AreaInfo] = {}
        for row in self.context.devices():
            codes = area_labels(row.areas, self.commune_labels)
            shown.update({a.code: a for a in row.areas if a.code in codes})
            counts[(row.state, "true" if row.enabled else "false", row.kind, row.vendor, *codes)] += row.count
        devices = GaugeMetricFamily("hub_devices", "Registered devices by operating state (online, degraded, "
                                    "offline, unknown), the administrator's switch, kind, vendor and area",
                                    labels=labels)
        for key, n in sorted(counts.items()):
            devices.add_metric(list(key), n)
        yield devices
        info = GaugeMetricFamily("hub_area_info", "The name and type of each area code used as a label",
                                 labels=["code", "name", "type"])
        for code, a in sorted(shown.items()):
            info.add_metric([code, a.name, a.type], 1)
        yield info

    def _deliveries(self, now: datetime) -> Iterator[Any]:
        window = self.deliveries_window_s
        since = now - timedelta(seconds=window) if window > 0 else None
        family = GaugeMetricFamily(
            "hub_deliveries", "Deliveries (one command for one device) by state and priority class: every one "
            "still open (scheduled, queued, sent), and the others queued in the last deliveries_window_s "
            f"({window:g} s; 0: all)", labels=["state", "class"])
        for row in sorted(self.context.deliveries(since), key=lambda r: (r.state, r.priority)):
            family.add_metric([row.state, row.priority], row.count)
        yield family

    def _queues(self, now: datetime) -> Iterator[Any]:
        family = GaugeMetricFamily("hub_queue_jobs", "Jobs in each of the hub's rq queues: waiting, running "
                                   "(started by a worker) and failed (kept for inspection)",
                                   labels=["queue", "status"])
        for q in self.context.queues():
            for status, n in (("waiting", q.waiting), ("running", q.running), ("failed", q.failed)):
                family.add_metric([q.name, status], n)
        yield family

    def _ingest(self, now: datetime) -> Iterator[Any]:
        lag = self.context.ingest()
        last = _seconds(lag.last_report_at)
        if last is not None:
            yield GaugeMetricFamily("hub_ingest_last_report_timestamp_seconds", "When the newest report heard "
                                    "from any device (ack, status, presence) was stored", value=last)
            yield GaugeMetricFamily("hub_ingest_last_report_age_seconds", "Seconds since the newest device "
                                    "report was stored: grows when the ingest stops or falls behind, or the "
                                    "devices fall silent", value=max(0.0, now.timestamp() - last))
        yield GaugeMetricFamily("hub_deliveries_unacked", "Deliveries sent and still waiting for their "
                                "device's ack", value=lag.unacked)
        oldest = _seconds(lag.oldest_unacked_at)
        if oldest is not None:
            yield GaugeMetricFamily("hub_deliveries_oldest_unacked_age_seconds", "Seconds since the oldest "
                                    "delivery still waiting for its ack was sent",
                                    value=max(0.0, now.timestamp() - oldest))

    def _sources(self, now: datetime) -> Iterator[Any]:
        up = GaugeMetricFamily("hub_source_up", "1 when the content source's last poll succeeded",
                               labels=["source", "plugin"])
        failures = GaugeMetricFamily("hub_source_failures", "Polls of the source failed in a row",
                                     labels=["source", "plugin"])
        success = GaugeMetricFamily("hub_source_last_success_timestamp_seconds", "When the source was last "
                                    "polled successfully", labels=["source", "plugin"])
        for src in self.context.sources():
            key = [src.name, src.plugin]
            up.add_metric(key, 1.0 if src.failures == 0 and src.last_success_at is not None else 0.0)
            failures.add_metric(key, src.failures)
            if src.last_success_at is not None:
                success.add_metric(key, src.last_success_at.timestamp())
        yield from (up, failures, success)
