"""The console's tests: the real hub serving its app on a loopback port (a server thread), its worker
and ingest as processes, simulated MQTT speakers and boards, and headless Chromium from Debian
driven by Playwright (never a browser download)."""
from __future__ import annotations

import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from werkzeug.serving import make_server

from hub.ports import free_port
from tests.support.services import MQTT_HOST, MQTT_PORT, REDIS_URL, ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Screenshots are kept here (ignored by git) for a person to look at after a run; HUB_TEST_ARTIFACTS moves them.
ARTIFACTS = Path(os.environ.get("HUB_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
PASSWORD = "Loa-phuong-1-Tan-An-2025!"  # strong enough for the password policy; the tests' own
PHONE = {"width": 390, "height": 844}  # a common phone's CSS pixels

# The console tests' fleet. Phường 1 (27694) and Phường 2 (27697) lie in Thành phố Tân An (794); Xã Long
# Hựu Đông (28099) in another district. One speaker of Phường 1 refuses every command (a "device
# fault"), so a delivery fails visibly; the board cannot set a volume (unsupported).
SPEAKERS = {"27694": 6, "27697": 3, "28099": 2}
REFUSING = "spk-27694-06"
BOARD = "led-27694-1"
OPERATOR, VIEWER = "can-bo-tan-an", "xem-phuong-1"  # operator of district 794; viewer of Phường 1


def write_config(folder: Path, prefix: str) -> Path:
    """A HUB_CONFIG the test's server thread and its worker and ingest processes all read."""
    cfg = {"database_url": f"sqlite:///{folder / 'hub.sqlite3'}", "redis_url": REDIS_URL,
           "queue": f"hubtest-{uuid.uuid4().hex[:10]}", "retry_backoff_s": [0.1, 0.2], "sweep_interval_s": 0.2,
           "state_dir": str(folder / "var"),
           "plugins": {"mqtt_speaker": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix}}}
    path = folder / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class ServerThread:
    """The hub's app (API and console) served on a free loopback port until stop()."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.server.daemon_threads = True  # an event stream left open must not hold the test's end
        self.thread = threading.Thread(target=self.server.serve_forever, name="console-server", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@dataclass
class Shots:
    """Screenshots of a test run, numbered in the order taken."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Any, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.taken) + 1:02d}-{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def sign_in(page: Any, base: str, name: str, password: str = PASSWORD) -> None:
    """Through the sign-in form, as a person does: the hub's address first."""
    page.goto(base + "/")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/console/$"))



def reload_until(page: Any, shown: Any, seconds: float) -> bool:
    """Reload, as a person would, until `shown(page)` holds (a device that lost its broker link on a
    busy machine reports again within seconds); whether it came to hold."""
    from hub.testing import scaled

    for _ in range(max(1, int(scaled(seconds)))):
        if shown(page):
            return True
        page.wait_for_timeout(1000)
        page.reload()
    return bool(shown(page))


HTML = {"Accept": "text/html"}  # what a browser sends: the console answers it with pages, not JSON


def form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


def client_sign_in(client: Any, name: str, password: str = PASSWORD) -> str:
    """Sign a Flask test client in through the console's form; returns the session's CSRF token."""
    page = client.get("/console/login", headers=HTML).get_data(as_text=True)
    r = client.post("/console/login", headers=HTML,
                    data={"login_token": form_value(page, "login_token"), "name": name, "password": password})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    return form_value(client.get("/console/tokens", headers=HTML).get_data(as_text=True), "csrf_token")


__all__ = ["ARTIFACTS", "BOARD", "CHROMIUM", "HTML", "OPERATOR", "PASSWORD", "PHONE", "REFUSING", "SPEAKERS", "VIEWER",
           "client_sign_in", "form_value", "reload_until", "ServerThread", "Shots", "sign_in", "write_config"]
