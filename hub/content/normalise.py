"""Vietnamese text made speakable before synthesis: abbreviations, dates, times, units and numbers
written out as a newsreader says them, so that no engine has to guess.

Engines read "UBND" letter by letter, "12/10/2026" as three numbers and a slash, "7h30" as "bảy
hát ba mươi", and gTTS and espeak-ng disagree on "1.000" (a thousand, in Vietnamese). Writing
the words out here makes every provider in the chain say the same thing, and makes the cache key
(a hash of this text) independent of how the bulletin was typed.

Order matters: the province's own dictionary first (it knows its place names best), then the
built-in abbreviations, dates, times, units, number ranges, and last the numbers themselves.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

from hub.content.numbers import read_decimal, read_digits, read_integer, read_month

ABBREVIATIONS: dict[str, str] = {
    "UBND": "Ủy ban nhân dân",
    "HĐND": "Hội đồng nhân dân",
    "MTTQ": "Mặt trận Tổ quốc",
    "BCH": "Ban chỉ huy",
    "PCTT": "phòng chống thiên tai",
    "TKCN": "tìm kiếm cứu nạn",
    "PCTT&TKCN": "phòng chống thiên tai và tìm kiếm cứu nạn",
    "PCCC": "phòng cháy chữa cháy",
    "CSGT": "cảnh sát giao thông",
    "ATGT": "an toàn giao thông",
    "KTTV": "khí tượng thủy văn",
    "THCS": "trung học cơ sở",
    "THPT": "trung học phổ thông",
    "BHYT": "bảo hiểm y tế",
    "BHXH": "bảo hiểm xã hội",
    "CHXHCN": "Cộng hòa xã hội chủ nghĩa",
    "NN&PTNT": "Nông nghiệp và Phát triển nông thôn",
    "NĐ-CP": "nghị định của Chính phủ",
    "QĐ": "quyết định",
    "TW": "trung ương",
    "VN": "Việt Nam",
    "SĐT": "số điện thoại",
    "TP.HCM": "Thành phố Hồ Chí Minh",
    "TP. HCM": "Thành phố Hồ Chí Minh",
    "TP HCM": "Thành phố Hồ Chí Minh",
    "TPHCM": "Thành phố Hồ Chí Minh",
    "HCM": "Hồ Chí Minh",
    "TP.": "thành phố",
    "Tp.": "thành phố",
    "TX.": "thị xã",
    "TT.": "thị trấn",
    "đ/c": "đồng chí",
    "Đ/c": "đồng chí",
    "v.v.": "vân vân",
}

# After a number only, so "m" in a word is left alone. Longest first, so km/h wins over km.
UNITS: dict[str, str] = {
    "km/h": "ki lô mét trên giờ",
    "m³/s": "mét khối trên giây",
    "m3/s": "mét khối trên giây",
    "mm/h": "mi li mét trên giờ",
    "m/s": "mét trên giây",
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "km": "ki lô mét",
    "cm": "xen ti mét",
    "mm": "mi li mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "hPa": "héc tô pát xcan",
    "kWh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "kV": "ki lô vôn",
    "°C": "độ xê",
    "ºC": "độ xê",
    "°": "độ",
    "%": "phần trăm",
    "VNĐ": "đồng",
    "VND": "đồng",
    "USD": "đô la Mỹ",
    "m": "mét",
}


def _term_pattern(terms: Mapping[str, str]) -> re.Pattern[str] | None:
    """One alternation of `terms`, longest first; a term's word-character ends must not touch
    other word characters ("VN" not inside "VNPT"), its punctuation ends may ("TP.Huế")."""
    if not terms:
        return None
    parts = []
    for term in sorted(terms, key=len, reverse=True):
        head = r"(?<!\w)" if term[0].isalnum() else ""
        tail = r"(?!\w)" if term[-1].isalnum() else ""
        parts.append(f"{head}{re.escape(term)}{tail}")
    return re.compile("|".join(parts))


def _replace_terms(text: str, terms: Mapping[str, str], pattern: re.Pattern[str] | None) -> str:
    if pattern is None:
        return text
    # a space after each replacement: "TP.Huế" must become "thành phố Huế"; spaces collapse later
    return pattern.sub(lambda m: f" {terms[m.group(0)]} ", text)


_ABBREVIATIONS = _term_pattern(ABBREVIATIONS)
_UNITS = re.compile(r"(?<=\d)\s?(" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
                    + r")(?!\w)")
_DATE = re.compile(r"(?<![\w/.,])(?:(ngày|Ngày)\s+)?(\d{1,2})(?:/(\d{1,2})(?:/(\d{4}))?|-(\d{1,2})-(\d{4}))"
                   r"(?![\w/]|[.,]\d)")
_MONTH_YEAR = re.compile(r"(?<!\w)(tháng|Tháng)\s+(\d{1,2})(?:\s*[/-]\s*(\d{4}))?(?![\w/]|[.,]\d)")
_CLOCK = re.compile(r"(?<![\w:.,])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\w:]|[.,]\d)")
_HOUR = re.compile(r"(?<![\w.,])(\d{1,2})\s?h(\d{1,2})?(?:'|p|ph)?(?!\w)")
_RANGE = re.compile(r"(?<=\d)\s*[-–]\s*(?=\d)")
_NEGATIVE = re.compile(r"(?<![\w])[-−](?=\d)")
_NUMBER = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?(?!\d)|\d{1,3}(?:,\d{3}){2,}(?!\d)|\d+[.,]\d+|\d+")


def _date(m: re.Match[str]) -> str:
    day = int(m.group(2))
    month = int(m.group(3) or m.group(5) or 0)
    year = m.group(4) or m.group(6)
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)  # not a date ("35/12"): the number rules read it
    words = f"ngày {read_integer(day)} tháng {read_month(month)}"
    return words + (f" năm {read_integer(int(year))}" if year else "")


def _month_year(m: re.Match[str]) -> str:
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return m.group(0)
    return f"{m.group(1)} {read_month(month)}" + (f" năm {read_integer(int(m.group(3)))}" if m.group(3) else "")


def _clock(hours: int, minutes: int, seconds: int | None) -> str | None:
    if hours > 24 or minutes > 59 or (seconds is not None and seconds > 59):
        return None
    words = f"{read_integer(hours)} giờ"
    if minutes:
        words += f" {read_integer(minutes)} phút"
    if seconds:
        words += f" {read_integer(seconds)} giây"
    return words


def _colon_time(m: re.Match[str]) -> str:
    said = _clock(int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
    return said if said is not None else m.group(0)


def _hour_time(m: re.Match[str]) -> str:
    said = _clock(int(m.group(1)), int(m.group(2) or 0), None)
    return said if said is not None else m.group(0)


def _number(m: re.Match[str]) -> str:
    raw = m.group(0)
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?", raw):  # 1.234.567,5: Vietnamese grouping
        whole, _, fraction = raw.replace(".", "").partition(",")
        return read_decimal(whole, fraction) if fraction else read_integer(int(whole))
    if re.fullmatch(r"\d{1,3}(?:,\d{3}){2,}", raw):  # 1,234,567: English grouping, unambiguous
        return read_integer(int(raw.replace(",", "")))
    if "," in raw or "." in raw:  # 3,5 (Vietnamese) or 3.5 (a decimal point: not a group of three)
        whole, fraction = re.split(r"[.,]", raw)
        return read_decimal(whole, fraction)
    if (len(raw) > 1 and raw.startswith("0")) or len(raw) > 15:
        return read_digits(raw)  # telephone numbers and codes are read digit by digit
    return read_integer(int(raw))


def _spaced(fn: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    return lambda m: f" {fn(m)} "


def normalise(text: str, dictionary: Mapping[str, str] | None = None) -> str:
    """`text` with abbreviations, dates, times, units and numbers written as they are read,
    in NFC. `dictionary`: the province's own terms (place names, units, bodies), applied first."""
    text = unicodedata.normalize("NFC", text)
    own = {unicodedata.normalize("NFC", k): unicodedata.normalize("NFC", v)
           for k, v in (dictionary or {}).items() if k.strip()}
    text = _replace_terms(text, own, _term_pattern(own))
    text = _replace_terms(text, ABBREVIATIONS, _ABBREVIATIONS)
    text = text.replace("&", " và ").replace("…", ".")
    text = _DATE.sub(_spaced(_date), text)
    text = _MONTH_YEAR.sub(_spaced(_month_year), text)
    text = _CLOCK.sub(_spaced(_colon_time), text)
    text = _UNITS.sub(lambda m: f" {UNITS[m.group(1)]} ", text)
    text = _HOUR.sub(_spaced(_hour_time), text)
    text = _RANGE.sub(" đến ", text)
    text = _NEGATIVE.sub("âm ", text)
    text = _NUMBER.sub(_spaced(_number), text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ([,.;:!?])", r"\1", text)
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """`text` in chunks of at most `max_chars`, cut at sentence ends (then commas, then spaces)
    so that no engine is handed more than it speaks well in one request, and no word is cut."""
    pieces: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if sentence:
            pieces.extend(_cut(sentence, max_chars))
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 1 + len(piece) <= max_chars:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    return chunks


def _cut(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    for sep in (", ", " "):
        at = sentence.rfind(sep, 0, max_chars)
        if at > 0:
            return [sentence[:at + len(sep) - 1].strip()] + _cut(sentence[at + len(sep):].strip(), max_chars)
    return [sentence[:max_chars]] + _cut(sentence[max_chars:], max_chars)  # one word longer than a chunk
