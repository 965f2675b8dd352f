"""One real hub per test module for the console's browser tests: the app on a loopback port, worker
and ingest processes, Redis, Mosquitto and simulated speakers and boards; and one headless
Chromium (Debian's) per module, a fresh browser context (cookies) per test."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import load_settings
from hub.fleet.registry import import_area_file, upsert_device
from hub.plugins import Plugins
from hub.runtime import QUEUE_ORDER, Runtime
from hub.testing import purge_queues, scaled
from hub.store.models import DeviceStatus
from tests.support.accounts import make_user
from tests.support.console import (ARTIFACTS, BOARD, CHROMIUM, OPERATOR, PASSWORD, REFUSING, SPEAKERS, VIEWER,
                                   ServerThread, Shots, write_config)
from tests.support.processes import Proc, wait_until
from tests.support.services import DATA, MQTT_HOST, MQTT_PORT

@dataclass
class ConsoleHub:
    rt: Runtime
    url: str
    prefix: str

    def speakers(self, commune: str) -> list[str]:
        return [f"SPK-{commune}-{i:02d}" for i in range(1, SPEAKERS[commune] + 1)]


def _register(rt: Runtime) -> list[Any]:
    """The fleet's devices (ids as in tests.support.console) and their simulators. Addresses, which
    are the simulators' MQTT client ids, carry a token of this run: two runs on one broker (parallel
    checkouts) would otherwise throw each other's devices off."""
    from hub_mqtt_speaker.device import SimDevice

    token = uuid.uuid4().hex[:8]
    sims = []
    with rt.db.session() as s:
        for commune, n in SPEAKERS.items():
            for i in range(1, n + 1):
                did = f"spk-{commune}-{i:02d}"
                address = f"{did}-{token}"
                upsert_device(s, rt.plugins, {"id": did.upper(), "name": f"Cụm loa {i:02d}", "vendor": "mqtt_speaker",
                                              "kind": "speaker", "area_code": commune, "address": address,
                                              "tags": []})
                # staggered answers, so that the progress page visibly changes row by row
                sims.append(SimDevice(address, ack_delay_s=0.4 * i, reject_all=(did == REFUSING)))
        upsert_device(s, rt.plugins, {"id": BOARD.upper(), "name": "Bảng tin chợ", "vendor": "mqtt_speaker",
                                      "kind": "led_board", "area_code": "27694", "address": f"{BOARD}-{token}",
                                      "tags": []})
    sims.append(SimDevice(f"{BOARD}-{token}", kind="led_board"))
    return sims


@pytest.fixture(scope="module")
def console_hub(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[ConsoleHub]:
    pytest.importorskip("hub_mqtt_speaker")
    from hub_mqtt_speaker.simulator import Fleet

    from hub.api import create_app

    folder = tmp_path_factory.mktemp("console")
    prefix = f"hubtest/{uuid.uuid4().hex[:10]}"
    config = write_config(folder, prefix)
    plugins = Plugins()
    plugins.load_entry_points()
    rt = Runtime(load_settings({"HUB_CONFIG": str(config)}), plugins=plugins)
    rt.db.create()
    with rt.db.session() as s:
        import_area_file(s, DATA / "legacy-three-level.yaml")
    sims = _register(rt)
    make_user(rt, OPERATOR, ["operator"], ["794"], password=PASSWORD)
    make_user(rt, VIEWER, ["viewer"], ["27694"], password=PASSWORD)
    fleet = Fleet(MQTT_HOST, MQTT_PORT, prefix, sims, status_interval=2.0)
    procs: list[Proc] = []
    server = None
    try:
        fleet.start(timeout=scaled(30))
        procs = [Proc("ingest", ["ingest"], config, folder), Proc("worker", ["worker"], config, folder)]

        def online() -> bool:
            with rt.db.session() as s:
                return len(s.scalars(select(DeviceStatus.device_id).where(
                    DeviceStatus.online.is_(True), DeviceStatus.operating_state == "online")).all()) >= len(sims)
        wait_until(online, scaled(30), "every simulated device to show online", procs)
        server = ServerThread(create_app(rt))
        yield ConsoleHub(rt, server.url, prefix)
    finally:
        if server is not None:
            server.stop()
        for p in procs:
            p.stop()
        fleet.stop(clear_retained=True)
        purge_queues(rt.redis, [rt.queue_name(p) for p in QUEUE_ORDER])
        rt.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make services` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # root in a container has no user namespace for Chromium's sandbox; the pages are the hub's own
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new browser profile (no cookie: Vietnamese by default, signed out) at a desktop width."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(scaled(15) * 1000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(ARTIFACTS / request.node.name)
