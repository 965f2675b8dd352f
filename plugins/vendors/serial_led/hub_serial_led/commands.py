"""Hub verbs -> request frames, and a board's reply -> the delivery's Result."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.text import for_board
from hub.vendor import DeviceRef, Envelope, Outcome, Result

from hub_serial_led import protocol as p
from hub_serial_led.frame import MAX_PAYLOAD, Frame, crc16_modbus

_FALSE = ("false", "0", "no", "off")
_TRUE = ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Request:
    frame: Frame
    detail: dict[str, Any] = field(default_factory=dict)  # goes into the ACKED result
    text_crc: int | None = None  # what a show-text reply must echo


def wants_unicode(device: DeviceRef) -> bool:
    """Whether to send the board UTF-8. `config.unicode` may arrive as a string from a CSV import;
    a board whose capabilities were narrowed to exclude led.text_unicode gets ASCII too."""
    raw = device.config.get("unicode", True)
    if isinstance(raw, str):
        if raw.strip().lower() not in _FALSE + _TRUE:
            raise ValueError(f"device config unicode={raw!r} must be true or false")
        raw = raw.strip().lower() in _TRUE
    elif not isinstance(raw, bool):
        raise ValueError(f"device config unicode={raw!r} must be true or false")
    if device.capabilities and "led.text_unicode" not in device.capabilities:
        return False
    return raw


def build_request(board: int, device: DeviceRef, env: Envelope) -> Request:
    """The frame for one device. ValueError when retrying could never help (bad params, a verb
    boards cannot do, text beyond the frame limit)."""
    verb, params = env.verb, env.params
    if verb == "led_show":
        text = params.get("text") or (env.content or {}).get("body")
        if not isinstance(text, str) or not text:
            raise ValueError("led_show needs params.text or content with a body")
        effect = params.get("effect") or "scroll"
        unicode_ok = wants_unicode(device)
        shown = for_board(text, unicode_ok)
        try:
            payload = p.show_text_payload(effect, shown)
        except p.ProtocolError as exc:
            raise ValueError(str(exc)) from None
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"text is {len(payload) - 1} bytes in UTF-8; a frame carries at most {MAX_PAYLOAD - 1}")
        detail: dict[str, Any] = {"board": board, "effect": effect, "encoding": "utf-8" if unicode_ok else "ascii",
                                  "chars": len(shown)}
        if not unicode_ok and shown != text:
            detail["shown"] = shown  # the operator sees what the transliteration made of the text
        return Request(Frame(board, p.SHOW_TEXT, payload), detail, crc16_modbus(payload[1:]))
    if verb == "led_clear":
        return Request(Frame(board, p.CLEAR), {"board": board})
    if verb == "set_brightness":
        level = params.get("level")
        if isinstance(level, bool) or not isinstance(level, int):
            raise ValueError("set_brightness needs an integer params.level 0–100")
        try:
            return Request(Frame(board, p.BRIGHTNESS, p.level_payload(level)), {"board": board})
        except p.ProtocolError as exc:
            raise ValueError(str(exc)) from None
    if verb == "power":
        on = params.get("on")
        if not isinstance(on, bool):
            raise ValueError("power needs params.on true or false")
        return Request(Frame(board, p.POWER, p.power_payload(on)), {"board": board})
    raise ValueError(f"serial_led boards cannot carry out {verb}")


def interpret(device_id: str, request: Request, reply: Frame) -> Result:
    """The Result for a checksum-verified reply from the addressed board."""
    board, command = request.frame.address, request.frame.command
    name = p.command_name(command)

    def refused(why: str) -> Result:
        return Result(device_id, Outcome.FAILED, reason=why, transient=False, detail={"board": board})

    if reply.command == p.NAK:
        _refused, code = p.decode_nak(reply.payload)
        what = p.describe_error(code) if code is not None else "NAK without an error code"
        return refused(f"board {board} refused {name}: {what}")
    if reply.command != p.REPLY | command:
        # Most likely a stale answer to an earlier request; the next attempt may be clean.
        return Result(device_id, Outcome.FAILED, transient=True,
                      reason=f"board {board} answered {p.command_name(reply.command)} (0x{reply.command:02X}) "
                             f"to {name}")
    if not reply.payload:
        return refused(f"board {board} answered {name} without a result code")
    if reply.payload[0] != p.RESULT_OK:
        return refused(f"board {board} answered {name} with {p.describe_error(reply.payload[0])}")
    detail = dict(request.detail)
    data = reply.payload[1:]
    if command == p.SHOW_TEXT:
        if len(data) < 2:
            return refused(f"board {board} answered {name} without the text checksum")
        echoed = int.from_bytes(data[:2], "big")
        if echoed != request.text_crc:
            return refused(f"board {board} stored other text than it was sent (text checksum 0x{echoed:04X} != "
                           f"0x{request.text_crc:04X}); a board that cannot show diacritics needs "
                           f"unicode: false in its device config")
    elif command == p.BRIGHTNESS and data:
        detail["brightness"] = data[0]  # read back: boards with fewer steps round
    elif command == p.POWER and data:
        wanted, got = bool(request.frame.payload[0]), bool(data[0])
        if got != wanted:
            # Frames carry no sequence number, so this may be a late reply to an earlier switch.
            return Result(device_id, Outcome.FAILED, transient=True,
                          reason=f"board {board} reports power {'on' if got else 'off'} after switching it "
                                 f"{'on' if wanted else 'off'}")
        detail["power"] = got
    return Result(device_id, Outcome.ACKED, detail=detail)
