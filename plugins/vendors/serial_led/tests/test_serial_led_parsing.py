"""parse_status: status reply frames and payloads -> DeviceStatus dicts; anything else ->
StatusParseError and never another exception (a fuzzer will throw random bytes at it)."""
from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from hub.schemas.status import DeviceStatusSchema
from hub.vendor import StatusParseError

from hub_serial_led import protocol as p
from hub_serial_led.adapter import SerialLedAdapter
from hub_serial_led.frame import Frame, encode_frame

ADDR = "socket://127.0.0.1:7001#5"
GOOD = p.status_payload(p.BoardStatus(power=True, showing=True, brightness=80, faults=("overheat", "led_module"),
                                      firmware="2.1.0"))


@pytest.fixture
def adapter() -> SerialLedAdapter:
    return SerialLedAdapter({})


def _frame(payload: bytes, board: int = 5, command: int = p.REPLY | p.QUERY_STATUS) -> bytes:
    return encode_frame(Frame(board, command, payload))


def test_status_payload_and_frame(adapter: SerialLedAdapter) -> None:
    before = datetime.now(timezone.utc)
    for data in (GOOD, _frame(GOOD)):
        st = adapter.parse_status(ADDR, data)
        assert st["online"] is True and st["activity"] == "showing" and st["power"] is True
        assert st["brightness"] == 80 and st["firmware"] == "2.1.0"
        assert st["faults"] == ["led_module", "overheat"]
        assert st["reported_at"].tzinfo is not None and st["reported_at"] >= before
        assert DeviceStatusSchema().validate(DeviceStatusSchema().dump(st)) == {}


@pytest.mark.parametrize("status, activity", [
    (p.BoardStatus(power=False, showing=True, brightness=0), "off"),
    (p.BoardStatus(power=True, showing=False, brightness=100), "idle"),
])
def test_activity(adapter: SerialLedAdapter, status: p.BoardStatus, activity: str) -> None:
    st = adapter.parse_status(ADDR, p.status_payload(status))
    assert st["activity"] == activity and st["firmware"] is None and st["faults"] == []


def test_newer_firmware_may_append_fields(adapter: SerialLedAdapter) -> None:
    flags_with_unknown_bit = bytearray(GOOD)
    flags_with_unknown_bit[1] |= 0x80
    st = adapter.parse_status(ADDR, bytes(flags_with_unknown_bit) + b"\x01\x02extra")
    assert st["brightness"] == 80
    unknown_fault = bytearray(GOOD)
    unknown_fault[3] = 0x40
    assert adapter.parse_status(ADDR, bytes(unknown_fault))["faults"] == ["fault_bit6"]


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"\x00\x01", "shorter"),
    (b"\x07\x01\x50\x00\x00", r"error 0x07 \(hardware fault\)"),
    (b"\x00\x01\x65\x00\x00", "brightness 101"),
    (b"\x00\x01\x50\x00\x21" + b"x" * 33, "firmware length 33"),
    (b"\x00\x01\x50\x00\x05abc", "truncated"),
    (b"\x00\x01\x50\x00\x02\xc3\xa9", "ASCII"),
    (_frame(GOOD)[:-2] + b"\x00\x03", "checksum"),
    (_frame(GOOD, board=7), "board 7, expected 5"),
    (_frame(b"\x00", command=p.REPLY | p.CLEAR), "not a status reply"),
    (_frame(bytes([p.QUERY_STATUS, 0x07]), command=p.NAK), "refused"),
    (b"\x02\x00\x03", "corrupt frame"),
])
def test_rejects(adapter: SerialLedAdapter, data: bytes, problem: str) -> None:
    with pytest.raises(StatusParseError, match=problem) as info:
        adapter.parse_status(ADDR, data)
    assert ADDR in str(info.value)


def test_wrong_types_are_parse_errors(adapter: SerialLedAdapter) -> None:
    for junk in (None, "text", 42, [0, 1]):
        with pytest.raises(StatusParseError):
            adapter.parse_status(ADDR, junk)  # type: ignore[arg-type]
    assert adapter.parse_status("not an address", GOOD)["brightness"] == 80  # the payload alone decides
    assert adapter.parse_status(ADDR, bytearray(GOOD))["brightness"] == 80


def _fuzz(adapter: SerialLedAdapter, data: bytes) -> None:
    try:
        st = adapter.parse_status(ADDR, data)
    except StatusParseError:
        return
    assert DeviceStatusSchema().validate(DeviceStatusSchema().dump(st)) == {}


def test_fuzz_random_bytes_only_ever_raise_status_parse_error(adapter: SerialLedAdapter) -> None:
    rng = random.Random(4242)
    for _ in range(5000):
        _fuzz(adapter, bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))))


def test_fuzz_mutated_status_frames(adapter: SerialLedAdapter) -> None:
    rng = random.Random(4343)
    seeds = [GOOD, _frame(GOOD), p.status_payload(p.BoardStatus(False, False, 0))]
    for _ in range(5000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
            elif data:
                del data[rng.randrange(len(data))]
        _fuzz(adapter, bytes(data))


def test_parse_ack_is_not_part_of_this_protocol(adapter: SerialLedAdapter) -> None:
    with pytest.raises(StatusParseError, match="synchronously"):
        adapter.parse_ack(ADDR, b"\x00")
