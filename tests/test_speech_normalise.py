"""What the normaliser makes of a bulletin is what listeners hear: dates, times, numbers and units
as a newsreader says them, the abbreviations written out, the province's own terms honoured."""
from __future__ import annotations

import unicodedata

import pytest

from hub.content.normalise import normalise, split_sentences
from hub.content.numbers import read_integer


@pytest.mark.parametrize(("n", "said"), [
    (0, "không"), (5, "năm"), (10, "mười"), (11, "mười một"), (14, "mười bốn"), (15, "mười lăm"),
    (21, "hai mươi mốt"), (24, "hai mươi tư"), (25, "hai mươi lăm"), (55, "năm mươi lăm"), (100, "một trăm"),
    (105, "một trăm linh năm"), (110, "một trăm mười"), (115, "một trăm mười lăm"), (1000, "một nghìn"),
    (1005, "một nghìn không trăm linh năm"), (2026, "hai nghìn không trăm hai mươi sáu"),
    (10_500, "mười nghìn năm trăm"), (1_000_005, "một triệu không trăm linh năm"),
    (3_200_000, "ba triệu hai trăm nghìn"), (1_500_000_000, "một tỷ năm trăm triệu"),
])
def test_numbers_are_read_the_vietnamese_way(n: int, said: str) -> None:
    assert read_integer(n) == said


@pytest.mark.parametrize(("text", "said"), [
    ("ngày 12/10/2026", "ngày mười hai tháng mười năm hai nghìn không trăm hai mươi sáu"),
    ("Họp ngày 1/4.", "Họp ngày một tháng tư."),
    ("từ 05-09-2026", "từ ngày năm tháng chín năm hai nghìn không trăm hai mươi sáu"),
    ("tháng 10/2026", "tháng mười năm hai nghìn không trăm hai mươi sáu"),
    ("lúc 7h30", "lúc bảy giờ ba mươi phút"),
    ("lúc 07:30", "lúc bảy giờ ba mươi phút"),
    ("từ 19h", "từ mười chín giờ"),
    ("gió 90 km/h", "gió chín mươi ki lô mét trên giờ"),
    ("mưa 150-200mm", "mưa một trăm năm mươi đến hai trăm mi li mét"),
    ("độ ẩm 85%", "độ ẩm tám mươi lăm phần trăm"),
    ("nhiệt độ 30°C", "nhiệt độ ba mươi độ xê"),
    ("rét -2°C", "rét âm hai độ xê"),
    ("lưu lượng 1.250 m³/s", "lưu lượng một nghìn hai trăm năm mươi mét khối trên giây"),
    ("mực nước 3,5 m", "mực nước ba phẩy năm mét"),
    ("lượng mưa 12,75mm", "lượng mưa mười hai phẩy bảy mươi lăm mi li mét"),
    ("0,05 ha", "không phẩy không năm héc ta"),
    ("hỗ trợ 2.000.000 đồng", "hỗ trợ hai triệu đồng"),
    ("gọi 0912345678", "gọi không chín một hai ba bốn năm sáu bảy tám"),
    ("UBND xã Tân Phú", "Ủy ban nhân dân xã Tân Phú"),
    ("HĐND tỉnh", "Hội đồng nhân dân tỉnh"),
    ("TP.Huế và TP.HCM", "thành phố Huế và Thành phố Hồ Chí Minh"),
    ("Ban chỉ huy PCTT&TKCN", "Ban chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn"),
    ("VNPT và VN", "VNPT và Việt Nam"),
])
def test_bulletin_phrases(text: str, said: str) -> None:
    assert normalise(text) == said


def test_the_province_dictionary_comes_first_and_keeps_word_boundaries() -> None:
    own = {"X.": "xã", "KCN": "khu công nghiệp", "UBND": "Ủy ban"}
    assert normalise("X.Tân Phú gần KCN Long Hậu; UBND", own) == "xã Tân Phú gần khu công nghiệp Long Hậu; Ủy ban"
    assert normalise("KCNA", own) == "KCNA"


def test_decomposed_input_comes_out_composed() -> None:
    decomposed = unicodedata.normalize("NFD", "Thông báo khẩn")
    assert normalise(decomposed) == "Thông báo khẩn" and unicodedata.is_normalized("NFC", normalise(decomposed))


def test_long_texts_split_at_sentence_ends_within_the_limit() -> None:
    text = "Bão số ba đang vào. " * 10 + "Một câu rất dài " + "và dài " * 30 + "kết thúc."
    chunks = split_sentences(text, 60)
    assert all(len(c) <= 60 for c in chunks)
    assert chunks[0] == "Bão số ba đang vào. Bão số ba đang vào. Bão số ba đang vào."
    assert " ".join(chunks).split() == text.split()  # nothing lost, no word cut
