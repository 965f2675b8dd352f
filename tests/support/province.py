"""The security tests' province seen through the API: devices in two districts, and accounts that
sign in with real API tokens (the accounts authenticator, as a deployed hub runs it) and post raw
JSON (the Flask test client cannot encode a lone surrogate itself; a probe sends the JSON escape)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from hub.access import accounts
from hub.access.actors import LOCAL_ADMIN
from hub.api import create_app
from hub.fleet.registry import upsert_device
from hub.runtime import Runtime
from hub.store.models import ApiToken, Area, AuditEntry, Command, Content, Delivery, Device, Group, GroupMember, User

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


def stored(rt: Runtime) -> tuple[Any, ...]:
    """Every row a write could add or change (the audit log included): a refusal leaves it all."""
    with rt.db.session() as s:
        def rows(*cols: Any) -> list[tuple[str, ...]]:
            return sorted(tuple(map(repr, r)) for r in s.execute(select(*cols)))
        return (rows(Area.code, Area.name, Area.path), rows(Device.id, Device.name, Device.address, Device.config),
                rows(Group.id, Group.name), rows(GroupMember.group_id, GroupMember.device_id),
                rows(Content.id), rows(Command.id), rows(Delivery.command_id, Delivery.state),
                rows(User.name, User.full_name), rows(ApiToken.id, ApiToken.name), rows(AuditEntry.seq))
