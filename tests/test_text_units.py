from __future__ import annotations

import unicodedata

import pytest

from hub.text import for_board, nfc, to_ascii
from hub.units import from_vendor_scale, to_vendor_scale


def test_transliteration_of_a_storm_warning() -> None:
    assert to_ascii("Thông báo khẩn: bão số 3") == "Thong bao khan: bao so 3"
    assert to_ascii("Đường Đồng Khởi") == "Duong Dong Khoi"


def test_decomposed_input_reaches_boards_composed() -> None:
    typed = unicodedata.normalize("NFD", "Thông báo khẩn")
    assert nfc(typed) == "Thông báo khẩn" and len(nfc(typed)) < len(typed)
    assert for_board(typed, unicode_ok=True).encode() == "Thông báo khẩn".encode()
    assert for_board(typed, unicode_ok=False) == "Thong bao khan"


@pytest.mark.parametrize("level, vendor", [(0, 1), (100, 10), (50, 6), (55, 6)])
def test_volume_to_a_one_to_ten_scale(level: int, vendor: int) -> None:
    assert to_vendor_scale(level, 1, 10) == vendor


def test_volume_round_trips_within_a_step_and_refuses_out_of_scale() -> None:
    for level in range(0, 101, 5):
        assert abs(from_vendor_scale(to_vendor_scale(level, 1, 10), 1, 10) - level) <= 6
    with pytest.raises(ValueError, match="outside the vendor scale"):
        from_vendor_scale(11, 1, 10)
