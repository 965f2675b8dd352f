"""What the prometheus output's tests share: a hub of their own (SQLite file, Redis prefix), a
seeded fleet, the output run by the real outputs runner, and a real Prometheus server."""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from hub.config import Settings
from hub.fleet.areas import AreaRow, import_areas
from hub.plugins import Plugins
from hub.ports import free_port
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.models import Command, Delivery, Device, DeviceStatus
from hub.testing import scaled, wait_until

PROVINCE, DISTRICT, COMMUNE_X, COMMUNE_Y, VILLAGE = "80", "794", "27694", "27697", "27694-A1"
AREAS = [AreaRow(PROVINCE, "Tỉnh Long An", "province"),
         AreaRow(DISTRICT, "Thành phố Tân An", "district", PROVINCE),
         AreaRow(COMMUNE_X, "Phường 1", "commune", DISTRICT),
         AreaRow(COMMUNE_Y, "Phường 2", "commune", DISTRICT),
         AreaRow(VILLAGE, "Khu phố 1", "village", COMMUNE_X)]
# (device id, area, operating state): commune X has 3 online (one of them in a village below it)
# and 2 offline; commune Y 1 online and 1 degraded; one device has never reported.
FLEET = [("loa-x1", COMMUNE_X, "online"), ("loa-x2", COMMUNE_X, "online"), ("loa-x3", VILLAGE, "online"),
         ("loa-x4", COMMUNE_X, "offline"), ("loa-x5", COMMUNE_X, "offline"),
         ("loa-y1", COMMUNE_Y, "online"), ("loa-y2", COMMUNE_Y, "degraded"), ("loa-y3", COMMUNE_Y, None)]


def make_runtime(tmp_path: Path) -> Runtime:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hub.sqlite3'}", queue=f"promtest-{uuid.uuid4().hex[:10]}",
                        state_dir=str(tmp_path / "var"), outputs_file=str(tmp_path / "outputs.yaml"),
                        outputs_tick_s=0.2, outputs_retry_s=(0.2, 0.5))
    plugins = Plugins()
    plugins.load_entry_points()
    rt = Runtime(settings, plugins=plugins)
    rt.db.create()
    return rt


def seed_fleet(rt: Runtime) -> None:
    now = utcnow()
    with rt.db.session() as s:
        import_areas(s, AREAS)
        for i, (did, area, state) in enumerate(FLEET):
            s.add(Device(id=did, name=did, vendor="mqtt_speaker", kind="speaker", area_code=area,
                         address=f"8601{i:011d}", capabilities=[], config={}, created_at=now))
            if state is not None:
                s.add(DeviceStatus(device_id=did, online=state != "offline", operating_state=state,
                                   last_seen_at=now - timedelta(seconds=30 + i)))
        s.add(Command(id="c1", verb="play", params={}, priority="emergency", expires_at=now + timedelta(hours=1),
                      request_hash="x", issuer="test", target={}, created_at=now))
        for did, state in (("loa-x1", "acked"), ("loa-x2", "acked"), ("loa-x3", "sent"), ("loa-x4", "expired")):
            s.add(Delivery(command_id="c1", device_id=did, vendor="mqtt_speaker", state=state, queued_at=now,
                           sent_at=now - timedelta(seconds=5)))


def write_outputs(rt: Runtime, **config: Any) -> None:
    entry = {"name": "metrics", "plugin": "prometheus", "config": config}
    Path(rt.settings.outputs_file).write_text(yaml.safe_dump({"outputs": [entry]}), encoding="utf-8")


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class PrometheusServer:
    """Debian's `prometheus` on a loopback port of its own, scraping one target every second,
    its storage under `workdir`. Use as a context manager."""

    def __init__(self, workdir: Path, target: str, metrics_path: str = "/metrics",
                 bearer_token: str | None = None) -> None:
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.port = free_port()
        job: dict[str, Any] = {"job_name": "hub", "scrape_interval": "1s", "scrape_timeout": "1s",
                               "metrics_path": metrics_path, "static_configs": [{"targets": [target]}]}
        if bearer_token:
            job["authorization"] = {"type": "Bearer", "credentials": bearer_token}
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                          "scrape_configs": [job]}), encoding="utf-8")
        self.log = workdir / "prometheus.log"
        self.args = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        ready = wait_until(lambda: self.proc.poll() is not None or self._ready(), scaled(30), 0.2)
        if not ready or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"prometheus did not start: {self.log.read_text(errors='replace')[-2000:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ready(self) -> bool:
        try:
            return get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1)[0] == 200
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now, through the HTTP API."""
        status, body = get(f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", body
        return data["data"]["result"]

    def targets(self) -> list[dict[str, Any]]:
        return json.loads(get(f"http://127.0.0.1:{self.port}/api/v1/targets")[1])["data"]["activeTargets"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
