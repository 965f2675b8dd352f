"""Vietnamese text for devices: NFC on the way in, transliteration for boards that cannot show
diacritics ("Thông báo khẩn" → "Thong bao khan") rather than garbage."""
from __future__ import annotations

import unicodedata

_NOT_DECOMPOSED = str.maketrans({"đ": "d", "Đ": "D"})


def nfc(text: str) -> str:
    """The composed form every device receives, whatever the operator's keyboard produced."""
    return unicodedata.normalize("NFC", text)


def to_ascii(text: str) -> str:
    """Strip Vietnamese diacritics; characters with no ASCII base become '?'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_NOT_DECOMPOSED))
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.encode("ascii", "replace").decode("ascii")


def for_board(text: str, unicode_ok: bool) -> str:
    """What to send to a board: NFC text if it shows Unicode, else its ASCII transliteration."""
    return nfc(text) if unicode_ok else to_ascii(text)
