"""Vietnamese number reading: digits as a newsreader says them.

The rules that make a naive digit-by-digit reading sound wrong: 1 after a tens word is "mốt"
(21 hai mươi mốt, but 11 mười một), 5 after a tens word is "lăm" (15 mười lăm, 25 hai mươi lăm),
4 after a tens word above ten is "tư" (24 hai mươi tư), a zero tens digit in a hundred is "linh"
(105 một trăm linh năm), and a group of three after a bigger one is read in full (2026 hai nghìn
không trăm hai mươi sáu). Groups are nghìn, triệu, tỷ; above that "nghìn tỷ", as the press does.
"""
from __future__ import annotations

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
GROUPS = ("", " nghìn", " triệu")
BILLION = 10**9


def _tens_units(n: int) -> str:
    """0 < n < 100."""
    tens, unit = divmod(n, 10)
    if tens == 0:
        return DIGITS[unit]
    head = "mười" if tens == 1 else f"{DIGITS[tens]} mươi"
    if unit == 0:
        return head
    if unit == 1 and tens > 1:
        return f"{head} mốt"
    if unit == 5:
        return f"{head} lăm"
    if unit == 4 and tens > 1:
        return f"{head} tư"
    return f"{head} {DIGITS[unit]}"


def _three(n: int, full: bool) -> str:
    """0 < n < 1000; `full`: a group after a bigger one, so 5 is "không trăm linh năm"."""
    hundreds, rest = divmod(n, 100)
    if hundreds == 0 and not full:
        return _tens_units(rest)
    words = f"{DIGITS[hundreds]} trăm"
    if rest == 0:
        return words
    if rest < 10:
        return f"{words} linh {DIGITS[rest]}"
    return f"{words} {_tens_units(rest)}"


def read_integer(n: int) -> str:
    """A whole number in words: 21 → "hai mươi mốt", 1_000_005 → "một triệu không trăm linh năm"."""
    if n < 0:
        return f"âm {read_integer(-n)}"
    if n == 0:
        return DIGITS[0]
    if n >= BILLION:
        high, low = divmod(n, BILLION)
        return f"{read_integer(high)} tỷ" + (f" {_below_billion(low, full=True)}" if low else "")
    return _below_billion(n, full=False)


def _below_billion(n: int, full: bool) -> str:
    parts: list[str] = []
    groups = [(n // 10 ** (3 * i)) % 1000 for i in range(3)]
    for i in (2, 1, 0):
        g = groups[i]
        if g == 0:
            continue
        parts.append(_three(g, full) + GROUPS[i])
        full = True  # every later group is read with its hundreds
    return " ".join(parts)


def read_digits(digits: str) -> str:
    """Digit by digit: telephone numbers, codes, a decimal part with leading zeros."""
    return " ".join(DIGITS[int(d)] for d in digits if d.isdigit())


def read_decimal(whole: str, fraction: str) -> str:
    """12,75 → "mười hai phẩy bảy mươi lăm"; 0,05 → "không phẩy không năm". The fraction is read as
    a number when it is short, digit by digit when long or when it starts with zero."""
    head = read_integer(int(whole))
    if len(fraction) > 3 or fraction.startswith("0"):
        return f"{head} phẩy {read_digits(fraction)}"
    return f"{head} phẩy {read_integer(int(fraction))}"


MONTHS = {4: "tư"}  # April is "tháng tư", never "tháng bốn"


def read_month(m: int) -> str:
    return MONTHS.get(m, read_integer(m))
