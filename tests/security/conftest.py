"""Shared by the security tests: a province with devices in two districts, accounts that sign in
with real API tokens (the accounts authenticator, as a deployed hub runs it), and raw JSON posts
(the Flask test client cannot encode a lone surrogate itself; a probe sends the JSON escape)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from hub import accounts
from hub.api import create_app
from hub.auth import LOCAL_ADMIN
from hub.models import ApiToken, Area, AuditEntry, Command, Content, Delivery, Device, Group, GroupMember, User
from hub.registry import upsert_device, upsert_group
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
VENDOR = "mqtt_speaker"  # drives speakers and LED boards; the repository's own plugin
# In the legacy test data: 80 province > 794 district > 27694, 27697 communes; 807 > 28099.
OWN, FAR = "27694", "28099"


@dataclass
class Probe:
    """A signed-in API client (Bearer token of a real account)."""
    client: FlaskClient
    name: str

    def send(self, method: str, url: str, body: Any = None) -> Any:
        """`body` as JSON text, ASCII-escaped as every JSON library writes a lone surrogate."""
        data = None if body is None else json.dumps(body)
        return self.client.open(url, method=method, data=data,
                                content_type="application/json" if data is not None else None)


def add_device(rt: Runtime, did: str, area: str, kind: str = "speaker", address: str | None = None) -> None:
    with rt.db.session() as s:
        upsert_device(s, rt.plugins, {"id": did, "name": f"Loa {did}", "vendor": VENDOR, "kind": kind,
                                      "area_code": area, "address": address or f"addr-{did}", "tags": []})


def probe(rt: Runtime, name: str, roles: list[str], areas: list[str]) -> Probe:
    with rt.db.session() as s:
        user, _ = accounts.create_user(s, LOCAL_ADMIN, name, roles, areas, login=False, full_name="Cán bộ")
        _, raw = accounts.create_token(s, LOCAL_ADMIN, user, "probe")
    client = create_app(rt).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return Probe(client, name)


@pytest.fixture
def province(rt: Runtime, legacy_areas: None) -> Runtime:
    """spk-own and led-own in commune 27694, spk-far in 28099 (another district), the group
    g-mixed holding spk-own and spk-far, and an operator op-far of 28099."""
    add_device(rt, "spk-own", OWN)
    add_device(rt, "led-own", OWN, kind="led_board")
    add_device(rt, "spk-far", FAR, address="line-0042")
    with rt.db.session() as s:
        upsert_group(s, {"id": "g-mixed", "name": "Chợ liên xã", "area_code": None, "devices": ["spk-own", "spk-far"]})
        accounts.create_user(s, LOCAL_ADMIN, "op-far", ["operator"], [FAR], login=False)
    return rt


def stored(rt: Runtime) -> tuple[Any, ...]:
    """Every row a write could add or change (the audit log included): a refusal leaves it all."""
    with rt.db.session() as s:
        def rows(*cols: Any) -> list[tuple[str, ...]]:
            return sorted(tuple(map(repr, r)) for r in s.execute(select(*cols)))
        return (rows(Area.code, Area.name, Area.path), rows(Device.id, Device.name, Device.address, Device.config),
                rows(Group.id, Group.name), rows(GroupMember.group_id, GroupMember.device_id),
                rows(Content.id), rows(Command.id), rows(Delivery.command_id, Delivery.state),
                rows(User.name, User.full_name), rows(ApiToken.id, ApiToken.name), rows(AuditEntry.seq))


def hub_cli(config: Path, *args: str | bytes, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real `hub` command in a subprocess; bytes arguments reach it as they are (not UTF-8)."""
    r = subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, timeout=120, cwd=ROOT,
                       env={**os.environ, "HUB_CONFIG": str(config)}, input=stdin.encode() if stdin else None)
    r.stdout = r.stdout.decode("utf-8", "backslashreplace")
    r.stderr = r.stderr.decode("utf-8", "backslashreplace")
    return r


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: error: "), r.stderr
    return lines[0]


@pytest.fixture
def cli_ready(config_file: Path) -> Path:
    """A database made and the legacy areas imported through the real CLI."""
    assert hub_cli(config_file, "init-db").returncode == 0
    r = hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml"))
    assert r.returncode == 0, r.stderr
    return config_file
