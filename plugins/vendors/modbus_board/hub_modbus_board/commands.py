"""What each verb writes to a unit's setpoints, and how the read-back proves the device did it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.text import for_board
from hub.units import from_vendor_scale, to_vendor_scale
from hub.vendor import DeviceRef, Envelope

from hub_modbus_board.registers import (DURATION_MAX, EFFECTS, FLAG_UNICODE, HR_BRIGHTNESS, HR_POWER, HR_TEXT,
                                        HR_TEXT_LENGTH, HR_VOLUME, TEXT_MAX_BYTES, VOLUME_MAX, StatusBlock,
                                        pack_text)

VERBS = ("led_show", "led_clear", "set_brightness", "set_volume", "power")

Check = Callable[[StatusBlock, bytes], tuple[str | None, dict[str, Any]]]


class CommandError(ValueError):
    """The command cannot be carried out as given; sending it again will not help."""


@dataclass
class Plan:
    writes: list[tuple[int, list[int]]]  # (first HR, values), written in this order before the commit
    check: Check  # read-back → (what differs or None, detail for the delivery)
    read_text: bool = False  # whether the check needs the board's display buffer
    detail: dict[str, Any] = field(default_factory=dict)


def _flag(value: Any, name: str) -> bool | None:
    """A device config flag, also when a CSV import left it as text."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise CommandError(f"device config {name}={value!r} is not true or false")


def unicode_wanted(device: DeviceRef) -> bool:
    """Whether the registry lets this board show diacritics. The board's own flag (HR 4 bit0)
    is checked as well before sending; either one saying no means transliteration."""
    if _flag(device.config.get("unicode"), "unicode") is False:
        return False
    return not device.capabilities or "led.text_unicode" in device.capabilities


def needs_flags(env: Envelope) -> bool:
    """Whether plan() needs HR 4 read from the board first."""
    return env.verb == "led_show"


def precheck(device: DeviceRef, env: Envelope) -> None:
    """CommandError when no board could take the command, so a hopeless one costs no request
    (and an unreachable board does not turn it into a retried timeout)."""
    guess = FLAG_UNICODE if unicode_wanted(device) else 0
    try:
        plan(device, env, guess)
    except CommandError as exc:
        if not guess:
            raise
        try:
            plan(device, env, 0)  # transliterated text is never longer: it may still fit
        except CommandError:
            raise exc from None


def plan(device: DeviceRef, env: Envelope, flags: int | None = None) -> Plan:
    """The writes for `env` on `device`; CommandError when it cannot be done. `flags` is HR 4 as
    read from the board (led_show only)."""
    p = env.params or {}
    if env.verb == "power":
        on = p.get("on")
        if not isinstance(on, bool):
            raise CommandError("power needs params.on true or false")
        return Plan([(HR_POWER, [int(on)])], lambda st, _t: (
            None if st.power == on else f"read-back power is {'on' if st.power else 'off'}, "
                                        f"not {'on' if on else 'off'} as written",
            {"power": st.power}))
    if env.verb == "set_brightness":
        level = _level(p, "set_brightness")
        return Plan([(HR_BRIGHTNESS, [level])], lambda st, _t: (
            None if st.brightness == level
            else f"read-back brightness {st.brightness} differs from the {level} written",
            {"brightness": st.brightness}))
    if env.verb == "set_volume":
        level = _level(p, "set_volume")
        steps = to_vendor_scale(level, 0, VOLUME_MAX)

        def check_volume(st: StatusBlock, _t: bytes) -> tuple[str | None, dict[str, Any]]:
            got = from_vendor_scale(st.volume, 0, VOLUME_MAX)
            problem = None if st.volume == steps else (
                f"read-back volume {st.volume}/{VOLUME_MAX} ({got}) differs from the {steps}/{VOLUME_MAX} "
                f"written for level {level}")
            return problem, {"volume": got, "volume_device": st.volume}

        return Plan([(HR_VOLUME, [steps])], check_volume)
    if env.verb == "led_clear":
        return Plan([(HR_TEXT_LENGTH, [0])], lambda st, _t: (
            None if st.text_length == 0 else f"the board still shows {st.text_length} bytes after clearing",
            {"text": "", "bytes": st.text_length}))
    if env.verb == "led_show":
        return _led_show(device, env, flags)
    raise CommandError(f"verb {env.verb} is not supported by modbus_board (it handles {', '.join(VERBS)})")


def _level(p: dict[str, Any], verb: str) -> int:
    level = p.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise CommandError(f"{verb} needs params.level, an integer 0-100")
    return level


def _led_show(device: DeviceRef, env: Envelope, flags: int | None) -> Plan:
    p = env.params or {}
    text = p.get("text") or (env.content or {}).get("body")
    if not isinstance(text, str) or not text:
        raise CommandError("led_show needs params.text or content with a body")
    effect = p.get("effect") or "scroll"
    if effect not in EFFECTS:
        raise CommandError(f"effect {effect!r} is not one of {', '.join(EFFECTS)}")
    duration = p.get("duration_s") or 0
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= DURATION_MAX:
        raise CommandError(f"duration_s {duration!r} is outside what the board holds (0-{DURATION_MAX} s)")
    wanted = unicode_wanted(device)
    unicode_ok = wanted and flags is not None and bool(flags & FLAG_UNICODE)
    try:
        shown = for_board(text, unicode_ok)  # refuses what hub.text's LED rule refuses, whatever the door
    except ValueError as exc:
        raise CommandError(f"params.text: {exc}") from None
    data = shown.encode("utf-8")
    if len(data) > TEXT_MAX_BYTES:
        how = "NFC-normalised" if unicode_ok else "transliterated to ASCII"
        raise CommandError(f"text is {len(data)} bytes in UTF-8 ({how}); the board's text slot holds "
                           f"{TEXT_MAX_BYTES} bytes and text is never cut short")
    detail = {"unicode": unicode_ok, "transliterated": shown != text and not unicode_ok, "effect": effect}
    if wanted and not unicode_ok:
        detail["note"] = "the board reports it cannot show Unicode (HR 4 bit0 clear)"

    def check_text(st: StatusBlock, on_board: bytes) -> tuple[str | None, dict[str, Any]]:
        got = on_board.decode("utf-8", errors="replace")
        out = {**detail, "text": got, "bytes": len(on_board)}
        if on_board == data:
            return None, out
        return (f"read-back text differs: the board shows {_short(got)!r} ({len(on_board)} bytes) "
                f"instead of the {len(data)} bytes written"), out

    writes = [(HR_TEXT, pack_text(data)),
              # Length last among the setpoints: a board that applies on its own never sees a
              # new length with old bytes. HR 4 is written as read; the device owns bit0.
              (HR_TEXT_LENGTH, [len(data), flags or 0, EFFECTS[effect], duration])]
    return Plan(writes, check_text, read_text=True)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
