"""The security probe's finding 1, reproduced against the real Redis: a device address is a place
the hub's processes open. A commune administrator registered a serial_led board at
`socket://127.0.0.1:6379#8` (the hub's own Redis) and sent CRLF lines in a text: Redis ran them.
A board at `spy:///dev/null?file=PATH` made the ingest's poller truncate PATH.

Both must be refused at registration (422 naming `address`), and a row an older release stored
unchecked must fail visibly when sent or polled, without touching Redis or the file."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from hub.access import accounts
from hub.api import create_app
from hub.access.actors import LOCAL_ADMIN
from hub.store.db import utcnow
from hub.delivery.dispatch import submit
from hub.delivery.ingest import Ingest
from hub.store.models import Delivery, Device, DeviceStatus
from hub.runtime import Runtime, set_runtime
from hub.schemas import CommandSchema
from hub.testing import wait_until
from hub.delivery.worker import make_worker
from tests.support.services import REDIS_URL

pytest.importorskip("hub_serial_led")
COMMUNE = "27694"


def _redis_hostport() -> tuple[str, int]:
    r = Redis.from_url(REDIS_URL)
    kw = r.connection_pool.connection_kwargs
    return kw.get("host", "127.0.0.1"), int(kw.get("port", 6379))


def _commune_admin(rt: Runtime) -> tuple[object, dict[str, str]]:
    """An API client and the bearer header of an administrator of one commune, as in production."""
    name = f"xa-{uuid.uuid4().hex[:6]}"
    with rt.db.session() as s:
        user, _ = accounts.create_user(s, LOCAL_ADMIN, name, ["administrator"], [COMMUNE], login=False)
        _, secret = accounts.create_token(s, LOCAL_ADMIN, user, "probe")
    return create_app(rt).test_client(), {"Authorization": f"Bearer {secret}"}


def _plant(rt: Runtime, device_id: str, address: str) -> None:
    """A row as an earlier release stored it: written straight to the database, never checked."""
    with rt.db.session() as s:
        s.add(Device(id=device_id, name="", vendor="serial_led", kind="led_board", area_code=COMMUNE,
                     address=address, capabilities=["led.text", "status.heartbeat"], config={},
                     admin_state="enabled", created_at=utcnow()))


@pytest.mark.parametrize("address", ["socket://127.0.0.1:6379#8", "socket://localhost:6379#8",
                                     "spy:///dev/null?file=/tmp/x#3", "loop://#1", "rfc2217://127.0.0.1:7000#1",
                                     "hwgrep://.*#1", "/etc/passwd#1"])
def test_commune_admin_cannot_register_a_device_at_the_hubs_redis_or_a_pyserial_trick(
        rt: Runtime, legacy_areas: None, address: str) -> None:
    host, port = _redis_hostport()
    address = address.replace("127.0.0.1:6379", f"{host}:{port}")
    client, auth = _commune_admin(rt)
    body = {"id": "LED-X", "vendor": "serial_led", "kind": "led_board", "area_code": COMMUNE, "address": address}
    r = client.post("/api/devices", json=body, headers=auth)
    assert r.status_code == 422, r.get_json()
    errors = r.get_json()["errors"]
    assert "address" in errors["json"], errors
    assert "rule:" in r.get_json()["message"], r.get_json()
    with rt.db.session() as s:
        assert s.get(Device, "LED-X") is None


def test_planted_redis_address_fails_visibly_and_no_key_lands_in_redis(rt: Runtime, legacy_areas: None) -> None:
    host, port = _redis_hostport()
    key = f"hubattack:{uuid.uuid4().hex}"
    rt.settings.plugins["serial_led"] = {"timeout_s": 0.5, "poll_interval_s": 0}
    _plant(rt, "LED-REDIS", f"socket://{host}:{port}#8")
    # The frame's length field must hold no NUL or quote for Redis's inline parser to go on to the
    # next line: a text over 255 bytes gives it a non-zero high byte (checked against Redis 7).
    payload = "x" * 300 + f"\r\nSET {key} pwned\r\nQUIT\r\n"
    set_runtime(rt)
    try:
        # The LED text rule refuses CR/LF at the door now; a command stored by an earlier release
        # may still carry them, so the text is put back after the schema, and the address check
        # alone must keep the bytes from Redis.
        data = CommandSchema().load({"verb": "led_show", "params": {"text": "x"}, "target": {"devices": ["LED-REDIS"]}})
        data["params"]["text"] = payload
        sub = submit(rt, LOCAL_ADMIN, data)
        make_worker(rt, threaded=True).work(burst=True, logging_level="WARNING")
    finally:
        set_runtime(None)
    landed = rt.redis.delete(key)
    assert not landed, f"the CRLF payload reached Redis: {key} was set"
    with rt.db.session() as s:
        row = s.scalars(select(Delivery).where(Delivery.command_id == sub.command.id)).one()
        assert row.state == "failed", (row.state, row.reason)
        assert row.reason and "address" in row.reason, row.reason


def test_planted_spy_address_leaves_the_file_untouched_when_ingest_polls(
        rt: Runtime, legacy_areas: None, tmp_path: Path) -> None:
    from hub_serial_led.simulator import SerialBoardsSim

    victim = tmp_path / "victim.txt"
    victim.write_text("the audit log, the database or the secret key\n", encoding="utf-8")
    sim = SerialBoardsSim([1]).start()
    try:
        # A genuine board on a loopback simulator, allowed explicitly: its status proves that the
        # poller did run a cycle over every watched board.
        rt.settings.device_networks = ["127.0.0.1"]
        rt.settings.plugins["serial_led"] = {"timeout_s": 0.3, "poll_interval_s": 0.1, "lock_dir": str(tmp_path)}
        _plant(rt, "LED-GOOD", sim.address(1))
        _plant(rt, "LED-SPY", f"spy:///dev/null?file={victim}#3")
        ingest = Ingest(rt, vendors=["serial_led"])
        ingest.start()
        try:
            def good_reported_twice() -> bool:
                with rt.db.session() as s:
                    st = s.get(DeviceStatus, "LED-GOOD")
                    return st is not None and st.online is True
            assert wait_until(good_reported_twice, timeout=30), "the poller never reported the genuine board"
            polls = sim.boards[1].replies
            assert wait_until(lambda: sim.boards[1].replies >= polls + 2, timeout=30)
        finally:
            ingest.stop()
    finally:
        sim.stop()
    assert victim.read_text(encoding="utf-8") == "the audit log, the database or the secret key\n"
