"""LED bulletin boards: text, Vietnamese diacritics, brightness."""
from __future__ import annotations

import pytest

from hub_conformance.suite.common import (SKIP, VI_SAMPLE, expect, first_difference, level_matches, nfc,
                                          pick_level, require_witness, requirement)


def _shows(s: dict) -> bool:
    return bool(s.get("led_text")) or s.get("activity") == "showing"


@requirement("LED-01")
def check_board_shows_and_clears_text(dut, device) -> None:  # noqa: ANN001
    limit = dut.limit("status_timeout_s")
    ans = dut.send("led_show", device, {"text": "Thông báo kiểm tra bảng tin"})
    dut.expect_acked(ans, "led_show")
    ok, seen, how = dut.wait_observed(device, _shows, limit)
    expect(ok, f"led_show was acknowledged but the board shows nothing ({how}: activity {seen.get('activity')!r})")
    ans = dut.send("led_clear", device)
    dut.expect_acked(ans, "led_clear")
    ok, seen, how = dut.wait_observed(device, lambda s: not _shows(s), limit)
    expect(ok, f"led_clear was acknowledged but the board still shows {seen.get('led_text')!r} ({how})")


def pieces(text: str, max_bytes: int) -> list[str]:
    """`text` in word-aligned pieces of at most `max_bytes` UTF-8 bytes (NFC)."""
    out: list[str] = []
    for word in nfc(text).split(" "):
        candidate = f"{out[-1]} {word}" if out else word
        if out and len(candidate.encode()) <= max_bytes:
            out[-1] = candidate
        else:
            out.append(word)
    return out


@requirement("LED-02")
def check_vietnamese_text_intact(dut, device) -> None:  # noqa: ANN001
    require_witness(dut, "the hub's status model carries no board text")
    for piece in pieces(VI_SAMPLE, int(dut.param("led_text_max_bytes"))):
        ans = dut.send("led_show", device, {"text": piece})
        dut.expect_acked(ans, "led_show of Vietnamese text")
        _, seen, how = dut.wait_observed(
            device, lambda s, p=piece: _shows(s) and (s.get("led_text") is None or nfc(s["led_text"]) == p),
            dut.limit("status_timeout_s"))
        expect(_shows(seen), f"led_show was acknowledged but the board shows nothing ({how})")
        shown = seen.get("led_text")
        if shown is None:
            pytest.skip(f"{SKIP}the witness ({how}) does not report the text a board shows")
        expect(nfc(shown) == piece, f"the board does not show the Vietnamese text intact: "
                                    f"{first_difference(nfc(shown), piece)}; shows {shown[:60]!r}…")


@requirement("BRIGHT-01")
def check_brightness_is_carried_out(dut, device) -> None:  # noqa: ANN001
    seen, _ = dut.observe(device)
    level = pick_level(dut, seen.get("brightness"))
    ans = dut.send("set_brightness", device, {"level": level})
    dut.expect_acked(ans, f"set_brightness {level}")
    ok, seen, how = dut.wait_observed(device, lambda s: level_matches(dut, s.get("brightness"), level),
                                      dut.limit("status_timeout_s"))
    expect(ok, f"brightness set to {level}, but the board's brightness is {seen.get('brightness')!r} ({how})")
