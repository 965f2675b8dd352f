"""What the check modules share. Not collected: pytest collects only check_*.py here."""
from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

import pytest

from hub_conformance.dut import DeviceUnderTest, RawAnswer, TestDevice, expect

requirement = pytest.mark.requirement
SKIP = "not verified: "

# Every Vietnamese vowel with every tone mark, đ/Đ, and a real sentence: a board that drops or
# swaps one diacritic shows a different word.
VI_SAMPLE = ("Bão số 3: Đề nghị người dân ở Quảng Ngãi sơ tán khẩn cấp, ưu tiên trẻ em và người già. "
             "àáảãạ ăằắẳẵặ âầấẩẫậ èéẻẽẹ êềếểễệ ìíỉĩị òóỏõọ ôồốổỗộ ơờớởỡợ ùúủũụ ưừứửữự ỳýỷỹỵ Đđ "
             "ÀÁẢÃẠ ĂẰẮẲẴẶ ÂẦẤẨẪẬ ÊỀẾỂỄỆ ÔỒỐỔỖỘ ƠỜỚỞỠỢ ƯỪỨỬỮỰ")


class AdapterError(RuntimeError):
    """The adapter itself failed (raised, could not send): reported as `error`, not `fail`."""


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def first_difference(shown: str, sent: str) -> str:
    for i, (a, b) in enumerate(zip(shown, sent, strict=False)):
        if a != b:
            return f"first difference at character {i}: {a!r} shown for {b!r}"
    return f"lengths differ: {len(shown)} shown, {len(sent)} sent"


def pick_level(dut: DeviceUnderTest, *avoid: Any) -> int:
    """A level more than a step away from any current one, so a device that does nothing
    cannot pass by accident."""
    step = max(1.0, dut.param("level_step"))
    known = [a for a in avoid if isinstance(a, (int, float)) and not isinstance(a, bool)]
    for level in (37, 63, 24, 81, 12, 90):
        if all(abs(level - a) > step for a in known):
            return level
    return 50


def level_matches(dut: DeviceUnderTest, got: Any, level: int) -> bool:
    """Whether a volume or brightness read back (or observed) is the level set, allowing half a
    step of the device's scale (parameter level_step) and nothing more."""
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return abs(got - level) <= max(0.5, dut.param("level_step") / 2)


def is_source(seen: Any, content: dict[str, Any]) -> bool:
    if seen is None:
        return False
    seen = str(seen)
    return seen in (content.get("id"), content.get("uri")) or (bool(content.get("id")) and content["id"] in seen)


def playing(content: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s.get("activity") == "playing" and is_source(s.get("source"), content)


def require_witness(dut: DeviceUnderTest, why: str) -> None:
    if dut.witness is None:
        pytest.skip(f"{SKIP}needs a witness ({why}); give the target file a `witness:`")


def require_source(seen: dict[str, Any], how: str) -> None:
    if seen.get("source") is None:
        pytest.skip(f"{SKIP}neither a witness nor the device's status says what plays ({how} reports no source)")


def no_error(answer: RawAnswer, what: str) -> RawAnswer:
    if answer.kind == "error":
        raise AdapterError(f"{what}: the adapter failed: {answer.reason}")
    return answer


def benign(dut: DeviceUnderTest, device: TestDevice) -> tuple[str, dict[str, Any], str | None] | None:
    """A command that changes something observable and harms nothing, with the observed key
    that shows it: (verb, params, key)."""
    seen, _ = dut.observe(device)
    st = dut.status(device) or {}
    caps = device.capabilities
    if "audio.volume" in caps:
        return "set_volume", {"level": pick_level(dut, seen.get("volume"), st.get("volume"))}, "volume"
    if "led.brightness" in caps:
        return "set_brightness", {"level": pick_level(dut, seen.get("brightness"), st.get("brightness"))}, "brightness"
    if "audio.stop" in caps:
        return "stop", {}, None
    if "led.text" in caps:
        return "led_clear", {}, None
    if "power.switch" in caps:
        return "power", {"on": True}, None
    return None


def expect_unchanged(dut: DeviceUnderTest, device: TestDevice, key: str | None, level: Any, what: str) -> None:
    """When a witness can tell, the probe's level must not have been applied."""
    if key is None or dut.witness is None:
        return
    seen, how = dut.observe(device)
    expect(not level_matches(dut, seen.get(key), level),
           f"{what}, yet the device's {key} became {seen.get(key)} ({how})")


__all__ = ["AdapterError", "SKIP", "VI_SAMPLE", "benign", "expect", "expect_unchanged", "first_difference",
           "is_source", "level_matches", "nfc", "no_error", "pick_level", "playing", "require_source",
           "require_witness", "requirement"]
