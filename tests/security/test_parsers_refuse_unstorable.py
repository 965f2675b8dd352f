"""The finding's payloads at the parsers: a lone surrogate and a time that does not exist in UTC
are refused with StatusParseError naming the field — in one place every plugin goes through
(DeviceStatusSchema for status, Ack for acks), so no installed plugin hands them on."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from hub.plugins import Plugins
from hub.schemas.status import DeviceStatusSchema
from hub.text import has_unpaired_surrogate
from hub.vendor import Ack, StatusParseError

SURROGATE_STATUS = b'{"online": true, "ts": "2026-12-05T08:00:00Z", "faults": ["amp \\ud800"]}'
NO_SUCH_TIME = b'{"online": true, "ts": "9999-12-31T23:59:59-01:00", "volume": 40}'
FAR_FUTURE = b'{"online": true, "ts": "2999-01-01T00:00:00Z"}'
SURROGATE_ACK = b'{"id": "c1", "ok": false, "error": "amp \\udfff broke"}'
NAN_ACK = b'{"id": "c1", "ok": true, "state": {"volume": 10, "gain": NaN}}'

_plugins = Plugins()
_plugins.load_entry_points()
VENDORS = sorted(_plugins.vendors().items())


@pytest.mark.parametrize("raw,field", [({"faults": ["amp \ud800"]}, "faults"), ({"firmware": "1.\udc00"}, "firmware"),
                                       ({"source": "\ud83d"}, "source"),
                                       ({"reported_at": "9999-12-31T23:59:59-01:00"}, "reported_at"),
                                       ({"reported_at": "0001-01-01T00:00:00+01:00"}, "reported_at"),
                                       ({"reported_at": "1999-12-31T23:59:59Z"}, "reported_at"),
                                       ({"reported_at": "2100-01-01T00:00:00Z"}, "reported_at")])
def test_the_status_schema_names_the_field_it_refuses(raw: dict, field: str) -> None:
    from marshmallow import ValidationError

    data = {"online": True, "reported_at": "2026-12-05T08:00:00+07:00", **raw}
    with pytest.raises(ValidationError) as err:
        DeviceStatusSchema().load(data)
    assert [path.split(".")[0] for path in err.value.messages] == [field]  # faults.0 names the item


def test_a_good_status_still_loads() -> None:
    out = DeviceStatusSchema().load({"online": True, "reported_at": "2099-12-31T22:00:00-01:00",
                                     "faults": ["loa hỏng 🔈"]})
    assert out["reported_at"] == datetime(2099, 12, 31, 22, 0, tzinfo=out["reported_at"].tzinfo)
    assert out["faults"] == ["loa hỏng 🔈"]


@pytest.mark.parametrize("kwargs", [{"command_id": "c\ud800"}, {"reason": "amp \udfff"},
                                    {"detail": {"k\ud800": 1}}, {"detail": {"gain": float("nan")}}])
def test_an_ack_that_cannot_be_stored_is_refused(kwargs: dict) -> None:
    with pytest.raises(StatusParseError):
        Ack(**{"command_id": "c1", "ok": True, **kwargs})


def test_mqtt_speaker_refuses_the_findings_payloads() -> None:
    parsing = pytest.importorskip("hub_mqtt_speaker.parsing")
    with pytest.raises(StatusParseError, match=r"status from spk-1: faults\.0: holds an unpaired surrogate"):
        parsing.parse_status("spk-1", SURROGATE_STATUS)
    with pytest.raises(StatusParseError, match=r"status from spk-1: ts: 9999-12-31T23:59:59-01:00 is outside"):
        parsing.parse_status("spk-1", NO_SUCH_TIME)
    with pytest.raises(StatusParseError, match=r"ts: .*clock is wrong"):
        parsing.parse_status("spk-1", FAR_FUTURE)
    with pytest.raises(StatusParseError, match="reason contains an unpaired surrogate"):
        parsing.parse_ack("spk-1", SURROGATE_ACK)
    with pytest.raises(StatusParseError, match="detail is not storable"):
        parsing.parse_ack("spk-1", NAN_ACK)


@pytest.mark.parametrize("vendor,cls", VENDORS, ids=[v for v, _ in VENDORS])
def test_no_plugin_hands_on_what_cannot_be_stored(vendor: str, cls: type) -> None:
    adapter = cls({})
    for payload in (SURROGATE_STATUS, NO_SUCH_TIME, FAR_FUTURE):
        try:
            out = adapter.parse_status("dev-1", payload)
        except (StatusParseError, NotImplementedError):
            continue
        assert not has_unpaired_surrogate(out), (vendor, out)
        at = out.get("reported_at")
        assert at is None or datetime(2000, 1, 1, tzinfo=timezone.utc) <= at.astimezone(timezone.utc)
    for payload in (SURROGATE_ACK, NAN_ACK):
        try:
            ack = adapter.parse_ack("dev-1", payload)
        except (StatusParseError, NotImplementedError):
            continue
        assert not has_unpaired_surrogate([ack.command_id, ack.reason, ack.detail]), (vendor, ack)
