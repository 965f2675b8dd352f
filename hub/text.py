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


def has_unpaired_surrogate(value: object) -> bool:
    """Whether a string anywhere in `value` (dict keys and values, lists) holds a lone UTF-16
    surrogate. JSON lets a device send one ("\\ud800"); Python decodes it, but no UTF-8 database
    driver can store it, so one such report used to fail every write batch it landed in."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_unpaired_surrogate(k) or has_unpaired_surrogate(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_unpaired_surrogate(v) for v in value)
    return False


def printable_repr(value: object, limit: int = 4000) -> str:
    """An ASCII repr of anything (surrogates and other escapes shown, never raised on), cut to
    `limit` characters: what the ingest keeps of a report it could not store."""
    try:
        text = ascii(value)
    except Exception as exc:  # noqa: BLE001 - a repr that raises must not stop the quarantine
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit - 15] + f"... ({len(text)} chars)"
