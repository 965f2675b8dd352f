"""The frame: CRC-16/MODBUS, byte stuffing, round trips and the stream reader, including
property-style checks over many random payloads (seeded, so failures reproduce)."""
from __future__ import annotations

import random

import pytest

from hub_serial_led import protocol as p
from hub_serial_led.frame import (ESC, ETX, MAX_PAYLOAD, STX, Frame, FrameError, FrameReader, crc16_modbus,
                                  decode_frame, encode_frame, stuff, unstuff)

SEED = 20251122


def test_crc16_modbus_check_value() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37  # the catalogue's check value for CRC-16/MODBUS
    assert crc16_modbus(b"") == 0xFFFF


@pytest.mark.parametrize("frame, wire", [
    # The examples of README.md, byte for byte.
    (Frame(5, p.CLEAR), "02 00 1b 22 05 11 62 b8 03"),  # length 0x0002 itself is stuffed
    (Frame(5, p.BRIGHTNESS, bytes([80])), "02 00 1b 23 05 12 50 38 d9 03"),
    (Frame(5, p.REPLY | p.BRIGHTNESS, bytes([0x00, 80])), "02 00 04 05 92 00 50 50 c6 03"),
    (Frame(5, p.SHOW_TEXT, bytes([0x00]) + "Bão".encode()), "02 00 07 05 10 00 42 c3 a3 6f c0 1e 03"),
    (Frame(5, p.NAK, bytes([0x12, 0x04])), "02 00 04 05 7f 12 04 cd ac 03"),
])
def test_byte_diagram_examples(frame: Frame, wire: str) -> None:
    assert encode_frame(frame).hex(" ") == wire
    assert decode_frame(bytes.fromhex(wire)) == frame


def test_special_bytes_are_stuffed() -> None:
    # Length 2 is 0x00 0x02: even the length field needs stuffing.
    frame = Frame(0x03, 0x1B, bytes([STX, ETX, ESC, 0x20, 0x22]))
    wire = encode_frame(frame)
    assert wire[0] == STX and wire[-1] == ETX
    inner = wire[1:-1]
    assert STX not in inner and ETX not in inner
    assert bytes([ESC, 0x22]) in inner and bytes([ESC, 0x23]) in inner and bytes([ESC, 0x3B]) in inner
    assert decode_frame(wire) == frame


@pytest.mark.parametrize("bad, kind", [
    (bytes([ESC]), "escape"),
    (bytes([ESC, 0x41]), "escape"),
])
def test_unstuff_rejects_bad_escapes(bad: bytes, kind: str) -> None:
    with pytest.raises(FrameError) as info:
        unstuff(b"ab" + bad)
    assert info.value.kind == kind


def test_decode_reports_what_is_wrong() -> None:
    good = encode_frame(Frame(5, p.REPLY | p.CLEAR, b"\x00"))
    broken = bytearray(good)
    broken[-2] ^= 0x01  # a CRC byte (not special before or after the flip)
    with pytest.raises(FrameError, match=r"checksum 0x[0-9A-F]{4} != 0x[0-9A-F]{4}") as info:
        decode_frame(bytes(broken))
    assert info.value.kind == "checksum"
    body = bytes([0x00, 0x09, 0x05, 0x91, 0x00])  # says 9 bytes, carries 3
    with pytest.raises(FrameError, match="length field 9 != 3") as info:
        decode_frame(bytes([STX]) + stuff(body + crc16_modbus(body).to_bytes(2, "little")) + bytes([ETX]))
    assert info.value.kind == "length"
    with pytest.raises(FrameError, match="shorter"):
        decode_frame(bytes([STX, 0x05, 0x11, ETX]))
    with pytest.raises(FrameError):
        decode_frame(b"no frame here")


def test_frame_limits() -> None:
    assert decode_frame(encode_frame(Frame(254, p.SHOW_TEXT, bytes(MAX_PAYLOAD)))).payload == bytes(MAX_PAYLOAD)
    with pytest.raises(ValueError, match="frame limit"):
        Frame(1, p.SHOW_TEXT, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        Frame(256, p.CLEAR)


def _random_frame(rng: random.Random) -> Frame:
    size = rng.choice([0, 1, 2, 3, rng.randrange(0, 64), rng.randrange(0, 2048)])
    # Bias towards the special bytes: they are what stuffing has to get right.
    alphabet = [STX, ETX, ESC, 0x22, 0x23, 0x3B] + list(range(256))
    payload = bytes(rng.choice(alphabet) for _ in range(size))
    return Frame(rng.randrange(256), rng.randrange(256), payload)


def test_round_trip_random_frames() -> None:
    rng = random.Random(SEED)
    for _ in range(2000):
        frame = _random_frame(rng)
        wire = encode_frame(frame)
        inner = wire[1:-1]
        assert STX not in inner and ETX not in inner
        assert decode_frame(wire) == frame
        assert unstuff(stuff(frame.payload)) == frame.payload


def test_any_single_byte_corruption_is_detected() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(1500):
        frame = _random_frame(rng)
        wire = bytearray(encode_frame(frame))
        i = rng.randrange(1, len(wire) - 1)
        wire[i] = (wire[i] + rng.randrange(1, 256)) % 256
        got = FrameReader().feed(bytes(wire))
        # Either the damage is reported, or no complete frame came out of it: never a frame
        # that silently differs from (or equals) what was sent.
        assert all(isinstance(g, FrameError) for g in got), (frame, bytes(wire).hex())


def test_reader_resyncs_over_noise_and_split_reads() -> None:
    rng = random.Random(SEED + 2)
    frames = [_random_frame(rng) for _ in range(200)]
    stream = bytearray()
    for f in frames:
        stream += bytes(rng.choice([0x00, 0xFF, 0x41, ETX, ESC]) for _ in range(rng.randrange(0, 4)))  # noise between
        stream += encode_frame(f)
    reader, got = FrameReader(), []
    pos = 0
    while pos < len(stream):
        n = rng.randrange(1, 40)
        got += reader.feed(bytes(stream[pos:pos + n]))
        pos += n
    assert got == frames
    assert not reader.in_frame


def test_reader_abandons_a_frame_cut_short_by_a_new_stx() -> None:
    good = encode_frame(Frame(5, p.REPLY | p.CLEAR, b"\x00"))
    reader = FrameReader()
    out = reader.feed(good[:5] + good)
    assert out == [Frame(5, p.REPLY | p.CLEAR, b"\x00")]
    assert reader.stray == 5
