"""Register packing, addresses, the status block and per-verb plans, without a network."""
from __future__ import annotations

import struct
import unicodedata
from datetime import datetime

import pytest

from hub.vendor import StatusParseError

from hub_modbus_board import commands
from hub_modbus_board.adapter import ModbusBoardAdapter
from hub_modbus_board.addressing import BoardAddress, Endpoint, parse_address
from hub_modbus_board.registers import (FLAG_UNICODE, HR_TEXT, HR_TEXT_LENGTH, STATUS_BYTES, TEXT_MAX_BYTES,
                                        chunks, decode_status, pack_text, unpack_text)
from modbus_board_helpers import VIETNAMESE, VIETNAMESE_ASCII, device, envelope

ADDRESS = "127.0.0.1:5020/1"


def status_bytes(power: int = 1, brightness: int = 80, volume: int = 16, heartbeat: int = 7, faults: int = 0,
                 firmware: tuple[int, int, int] = (1, 4, 2), text_length: int = 0) -> bytes:
    return struct.pack(">9H", power, brightness, volume, heartbeat, faults, *firmware, text_length)


@pytest.mark.parametrize("text", [VIETNAMESE, "Đà Nẵng", "a", "ab", "Ồ", ""])
def test_text_packing_round_trips(text: str) -> None:
    data = text.encode("utf-8")
    regs = pack_text(data)
    assert len(regs) == (len(data) + 1) // 2 and all(0 <= r <= 0xFFFF for r in regs)
    assert unpack_text(regs, len(data)) == data


def test_packing_is_big_endian_two_bytes_per_register() -> None:
    assert pack_text(b"Th\xc3\xb4") == [0x5468, 0xC3B4]
    assert pack_text(b"abc") == [0x6162, 0x6300]  # the odd byte is padded, never dropped


def test_chunks_respect_request_limits() -> None:
    assert chunks(10, 128, 123) == [(10, 123), (133, 5)]
    assert chunks(16, 125, 125) == [(16, 125)]


@pytest.mark.parametrize("raw,expected", [
    ("127.0.0.1:5020/1", BoardAddress(Endpoint("127.0.0.1", 5020), 1)),
    ("board-7.xa.local/3", BoardAddress(Endpoint("board-7.xa.local", 502), 3)),
    ("[fd00::7]:1502/255", BoardAddress(Endpoint("fd00::7", 1502), 255)),
])
def test_addresses(raw: str, expected: BoardAddress) -> None:
    assert parse_address(raw) == expected
    assert str(parse_address(raw)).endswith(f"/{expected.unit}")


@pytest.mark.parametrize("raw", ["127.0.0.1:5020", "127.0.0.1:5020/0", "127.0.0.1:5020/256", "127.0.0.1:70000/1",
                                 "http://x/1", "", "a b:1/1"])
def test_bad_addresses(raw: str) -> None:
    with pytest.raises(ValueError, match="address"):
        parse_address(raw)


def test_status_block_parses_to_a_device_status() -> None:
    st = ModbusBoardAdapter({}).parse_status(ADDRESS, status_bytes(volume=19, faults=0b101, text_length=12))
    assert st["online"] is True and st["power"] is True and st["activity"] == "showing"
    assert st["volume"] == 61 and st["brightness"] == 80 and st["firmware"] == "1.4.2"
    assert st["faults"] == ["amplifier_overheat", "mains_lost"]
    assert isinstance(st["reported_at"], datetime) and st["reported_at"].tzinfo is not None
    assert ModbusBoardAdapter({}).parse_status(ADDRESS, status_bytes(power=0))["activity"] == "off"
    assert ModbusBoardAdapter({}).parse_status(ADDRESS, status_bytes())["activity"] == "idle"


def test_unknown_fault_bits_are_reported_not_dropped() -> None:
    assert decode_status(status_bytes(faults=1 << 9)).faults == ["fault_bit_9"]


@pytest.mark.parametrize("payload,message", [
    (b"garbage", f"expected {STATUS_BYTES} bytes"),
    (b"", f"expected {STATUS_BYTES} bytes"),
    (status_bytes() + b"\x00\x00", f"expected {STATUS_BYTES} bytes"),
    (b"\xff" * STATUS_BYTES, "power 65535 is not 0 or 1"),
    (status_bytes(volume=32), "volume 32 is outside 0-31"),
    (status_bytes(brightness=101), "brightness 101"),
    (status_bytes(text_length=257), "text length 257"),
])
def test_garbage_status_raises_status_parse_error(payload: bytes, message: str) -> None:
    with pytest.raises(StatusParseError, match=message) as err:
        ModbusBoardAdapter({}).parse_status(ADDRESS, payload)
    assert ADDRESS in str(err.value)


def test_parse_ack_explains_there_is_none() -> None:
    with pytest.raises(StatusParseError, match="synchronously"):
        ModbusBoardAdapter({}).parse_ack(ADDRESS, b"{}")


# -- plans ------------------------------------------------------------------------------------------

def _written_text(plan: commands.Plan) -> bytes:
    writes = dict(plan.writes)
    return unpack_text(writes[HR_TEXT], writes[HR_TEXT_LENGTH][0])


def test_led_show_sends_nfc_utf8_whatever_the_keyboard_produced() -> None:
    decomposed = unicodedata.normalize("NFD", VIETNAMESE)
    assert decomposed != VIETNAMESE
    plan = commands.plan(device(ADDRESS), envelope("led_show", {"text": decomposed}), FLAG_UNICODE)
    assert _written_text(plan) == VIETNAMESE.encode("utf-8")


@pytest.mark.parametrize("dev,flags", [
    (device(ADDRESS, unicode=False), FLAG_UNICODE),
    (device(ADDRESS, unicode="false"), FLAG_UNICODE),  # as a CSV import leaves it
    (device(ADDRESS, capabilities=frozenset({"led.text", "led.brightness"})), FLAG_UNICODE),
    (device(ADDRESS), 0),  # the board itself says it cannot
])
def test_ascii_boards_get_the_transliteration(dev, flags: int) -> None:
    plan = commands.plan(dev, envelope("led_show", {"text": VIETNAMESE}), flags)
    assert _written_text(plan) == VIETNAMESE_ASCII.encode("ascii")


def test_text_longer_than_the_slot_fails_clearly_and_is_never_cut() -> None:
    long_text = "Bão số 3 " * 30  # 270 characters, 360 bytes in UTF-8
    with pytest.raises(commands.CommandError, match=r"360 bytes in UTF-8 .*holds 256 bytes.*never cut short"):
        commands.plan(device(ADDRESS), envelope("led_show", {"text": long_text}), FLAG_UNICODE)
    # The same text transliterated for an ASCII board is still too long...
    with pytest.raises(commands.CommandError, match="270 bytes"):
        commands.plan(device(ADDRESS, unicode=False), envelope("led_show", {"text": long_text}), FLAG_UNICODE)
    # ...while exactly 256 bytes fit.
    exact = "ễ" * 85 + "a"  # 3 bytes each, 256 in all
    assert len(_written_text(commands.plan(device(ADDRESS), envelope("led_show", {"text": exact}),
                                           FLAG_UNICODE))) == TEXT_MAX_BYTES


def test_vietnamese_that_only_fits_once_transliterated() -> None:
    text = "Thông báo khẩn " * 12  # 180 characters: 228 bytes in UTF-8... and 180 in ASCII
    text = text + "ữ" * 10  # now 258 bytes in UTF-8, 190 in ASCII
    with pytest.raises(commands.CommandError):
        commands.plan(device(ADDRESS), envelope("led_show", {"text": text}), FLAG_UNICODE)
    assert len(_written_text(commands.plan(device(ADDRESS, unicode=False), envelope("led_show", {"text": text}),
                                           FLAG_UNICODE))) == 190


def test_precheck_only_refuses_what_no_board_could_take() -> None:
    too_long_in_utf8 = "Thông báo khẩn " * 12 + "ữ" * 10  # 258 bytes in UTF-8, 190 in ASCII
    commands.precheck(device(ADDRESS), envelope("led_show", {"text": too_long_in_utf8}))  # an ASCII board takes it
    with pytest.raises(commands.CommandError, match="360 bytes in UTF-8 \\(NFC"):
        commands.precheck(device(ADDRESS), envelope("led_show", {"text": "Bão số 3 " * 30}))
    with pytest.raises(commands.CommandError, match="270 bytes in UTF-8 \\(transliterated"):
        commands.precheck(device(ADDRESS, unicode=False), envelope("led_show", {"text": "Bão số 3 " * 30}))


@pytest.mark.parametrize("verb,params,message", [
    ("play", {}, "not supported"),
    ("set_volume", {"level": 101}, "0-100"),
    ("set_brightness", {}, "params.level"),
    ("power", {"on": "yes"}, "true or false"),
    ("led_show", {}, "params.text or content"),
    ("led_show", {"text": "x", "effect": "spin"}, "effect"),
    ("led_show", {"text": "x", "duration_s": 86400}, "0-65535"),
])
def test_commands_the_board_cannot_take(verb: str, params: dict, message: str) -> None:
    with pytest.raises(commands.CommandError, match=message):
        commands.plan(device(ADDRESS), envelope(verb, params), FLAG_UNICODE)


def test_led_show_takes_the_content_body_when_there_is_no_text() -> None:
    plan = commands.plan(device(ADDRESS), envelope("led_show", content={"body": "Họp tổ dân phố"}), FLAG_UNICODE)
    assert _written_text(plan).decode() == "Họp tổ dân phố"
