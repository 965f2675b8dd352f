"""Hypothesis over every installed vendor plugin's parse_status and parse_ack: random bytes and
random JSON-ish payloads may only give a valid result or StatusParseError — never another
exception, which would escape into a listener thread."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hub.plugins import Plugins
from hub.vendor import Ack, StatusParseError

_plugins = Plugins()
_plugins.load_entry_points()
VENDORS = sorted(_plugins.vendors().items())

KEYS = ["id", "ok", "error", "state", "ts", "online", "activity", "source", "volume", "brightness", "power",
        "signal", "faults", "firmware", "network", "rssi_dbm", "quality", "status", "result", "code", "data",
        "Power", "POWER", "StatusSTS", "Volume", "registers", "reported_at", "command_id", "reason", "detail"]
scalars = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["2026-11-23T00:00:00Z", "2026-11-23T00:00:00+07:00", "not a date", "", "4g",
                              "playing", "idle", "ON", "OFF", "1", "0"]))
json_like = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                         | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6),
                         max_leaves=20)
objects = st.dictionaries(st.sampled_from(KEYS), json_like, max_size=10)


def _encode(value: object) -> bytes:
    try:
        return json.dumps(value, allow_nan=True).encode()
    except (ValueError, TypeError):
        return b"{}"


acky = st.fixed_dictionaries({"id": st.text(min_size=1, max_size=12), "ok": st.booleans(),
                               "ts": st.sampled_from(["2026-11-23T00:00:00Z", "x"])},
                              optional={k: json_like for k in ("error", "state", "volume", "activity", "signal")})
payloads = (st.binary(max_size=300) | acky.map(_encode)
            | objects.map(_encode)
            | json_like.map(_encode)
            | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))

ADDRESSES = st.sampled_from(["spk-1", "1", "10.0.0.7:502", "gw-1/ch-3", "", "ÿ", "a" * 300])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.mark.parametrize("vendor,cls", VENDORS, ids=[v for v, _ in VENDORS])
def test_fuzz_parse_status_and_ack(vendor: str, cls: type) -> None:
    from hub.vendor import VendorAdapter

    adapter = cls({})
    # the base class's NotImplementedError is allowed only where the plugin does not parse at all
    unparsed = {m for m in ("parse_status", "parse_ack") if getattr(cls, m) is getattr(VendorAdapter, m)}
    seen = {"status_ok": 0, "status_refused": 0, "ack_ok": 0, "ack_refused": 0}

    @FUZZ
    @given(address=ADDRESSES, payload=payloads)
    def status(address: str, payload: bytes) -> None:
        try:
            out = adapter.parse_status(address, payload)
        except StatusParseError:
            seen["status_refused"] += 1
            return
        except NotImplementedError:
            if "parse_status" not in unparsed:
                raise
            return
        assert isinstance(out, dict), f"{vendor}.parse_status returned {type(out).__name__}"
        seen["status_ok"] += 1

    @FUZZ
    @given(address=ADDRESSES, payload=payloads)
    def ack(address: str, payload: bytes) -> None:
        try:
            out = adapter.parse_ack(address, payload)
        except StatusParseError:
            seen["ack_refused"] += 1
            return
        except NotImplementedError:
            if "parse_ack" not in unparsed:
                raise
            return
        assert isinstance(out, Ack), f"{vendor}.parse_ack returned {type(out).__name__}"
        assert isinstance(out.command_id, str) and isinstance(out.ok, bool)
        seen["ack_ok"] += 1

    status()
    ack()
    print(f"\n{vendor}: {seen}" + (f" (does not override {', '.join(sorted(unparsed))})" if unparsed else ""))
