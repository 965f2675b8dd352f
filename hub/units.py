"""Vendor scales ↔ the hub's normalised 0–100."""
from __future__ import annotations


def to_vendor_scale(level: int, lo: int, hi: int) -> int:
    """0–100 → lo..hi, rounding to the nearest step (0 stays lo, 100 reaches hi)."""
    if not 0 <= level <= 100:
        raise ValueError(f"level {level} is outside 0–100")
    return lo + int(level * (hi - lo) / 100 + 0.5)  # half up, not Python's half-to-even


def from_vendor_scale(value: int, lo: int, hi: int) -> int:
    """lo..hi → 0–100; raises ValueError outside lo..hi so a misreport is never stored."""
    if not lo <= value <= hi:
        raise ValueError(f"value {value} is outside the vendor scale {lo}–{hi}")
    return int((value - lo) * 100 / (hi - lo) + 0.5)
