"""Text rules of the hub, written once here.

Every text field: no unpaired surrogates (U+D800–U+DFFF). JSON's "\\ud800" escape and the command
line's undecodable bytes (Python's surrogateescape) both produce them; stored, they make every
answer that contains them fail to encode, for everyone. `find_surrogate` finds them.

LED text (what a board shows): NFC-normalised, and refused (not stripped: an operator must see
that the text they typed is not what a board can show, and a silently changed bulletin is worse
than a refused one) when it holds a character of these Unicode categories:
- Cc: C0 and C1 controls and DEL — ESC, NUL, CR, LF, TAB… (board protocols give them meanings);
- Cf: format characters — bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069),
  marks (U+200E, U+200F, U+061C), zero-width space/joiners (U+200B–U+200D, U+2060), BOM (U+FEFF),
  soft hyphen: invisible on a board, and able to make it show text other than what was approved;
- Zl, Zp: U+2028 and U+2029 (line and paragraph separators);
- Cs: surrogates.
Line breaks are therefore refused too: no LED verb of the hub has a line separator field, so a
board gets one line of text (it scrolls). `led_text_problem` applies the rule; the command and
content schemas refuse such text with 422 naming the field, and `for_board`, which every LED
plugin calls before bytes go out, refuses it again for any other door.

Vietnamese text for devices: NFC on the way in, transliteration for boards that cannot show
diacritics ("Thông báo khẩn" → "Thong bao khan") rather than garbage."""
from __future__ import annotations

import re
import unicodedata
from typing import Any

_NOT_DECOMPOSED = str.maketrans({"đ": "d", "Đ": "D"})
_SURROGATE = re.compile("[\ud800-\udfff]")
LED_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
SURROGATE_MESSAGE = "holds an unpaired surrogate (U+D800–U+DFFF), which is not text: send valid Unicode"


class TextError(ValueError):
    """Text a device must not receive; the message names the character and its position."""


def find_surrogate(text: str) -> int | None:
    """Index of the first unpaired surrogate in `text`, or None."""
    m = _SURROGATE.search(text)
    return None if m is None else m.start()


def surrogate_path(node: Any, path: str = "") -> str | None:
    """Dotted path (keys and list indexes) of the first string — key or value — in a parsed JSON
    document that holds an unpaired surrogate; "" names the document itself; None when clean."""
    stack: list[tuple[Any, str]] = [(node, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if find_surrogate(item) is not None:
                return where
        elif isinstance(item, dict):
            for k, v in item.items():
                sub = f"{where}.{k}" if where else str(k)
                if isinstance(k, str) and find_surrogate(k) is not None:
                    return f"{where}.{_escaped(k)}" if where else _escaped(k)
                stack.append((v, sub))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, f"{where}.{i}" if where else str(i)) for i, v in enumerate(item))
    return None


def _escaped(text: str) -> str:
    """`text` with its surrogates written as \\udXXX, so that a message naming it can be encoded."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def describe_surrogate(text: str) -> str:
    at = find_surrogate(text)
    return (f"holds an unpaired surrogate (U+{ord(text[at]):04X} at character {at + 1}); "
            f"send valid Unicode (UTF-8)") if at is not None else ""


def nfc(text: str) -> str:
    """The composed form every device receives, whatever the operator's keyboard produced."""
    return unicodedata.normalize("NFC", text)


def led_text_problem(text: str) -> str | None:
    """Why `text` may not go to an LED board (the rule above), or None when it may."""
    for i, ch in enumerate(nfc(text) if find_surrogate(text) is None else text, 1):
        cat = unicodedata.category(ch)
        if cat in LED_REFUSED_CATEGORIES:
            name = unicodedata.name(ch, "control character" if cat == "Cc" else "unnamed character")
            return (f"character {i} is U+{ord(ch):04X} ({name}): LED text may not hold control, "
                    f"bidirectional-override, zero-width or line-break characters")
    return None


def led_text(text: str) -> str:
    """NFC text for a board; TextError when the rule above refuses it."""
    problem = led_text_problem(text)
    if problem:
        raise TextError(problem)
    return nfc(text)


def to_ascii(text: str) -> str:
    """Strip Vietnamese diacritics; characters with no ASCII base become '?'."""
    decomposed = unicodedata.normalize("NFD", text.translate(_NOT_DECOMPOSED))
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base.encode("ascii", "replace").decode("ascii")


def for_board(text: str, unicode_ok: bool) -> str:
    """What to send to a board: NFC text if it shows Unicode, else its ASCII transliteration.
    TextError (a ValueError) for text the LED rule refuses, whatever the door it came by."""
    shown = led_text(text)
    return shown if unicode_ok else to_ascii(shown)


def board_encoding(unicode_ok: bool) -> str:
    """The encoding a board is sent text in: UTF-8 when it shows Unicode, else ASCII."""
    return "UTF-8" if unicode_ok else "ASCII"


def board_length(text: str, unicode_ok: bool) -> int:
    """Bytes `text` takes on a board, in its encoding, as `for_board` makes it (TextError for
    text the LED rule refuses)."""
    return len(for_board(text, unicode_ok).encode("utf-8" if unicode_ok else "ascii"))


def led_fit_problem(text: str, max_bytes: int, unicode_ok: bool) -> str | None:
    """Why `text` does not fit a board holding `max_bytes` bytes of text, or None when it does.
    Boards cut longer text short (or scroll garbage) while answering that all went well, so
    the hub refuses it for that board instead: a bulletin is shown whole or not at all."""
    n = board_length(text, unicode_ok)
    if n <= max_bytes:
        return None
    how = "" if unicode_ok else ", transliterated"
    return (f"text is {n} bytes in {board_encoding(unicode_ok)}{how}; this board holds at most "
            f"{max_bytes} bytes (led_text_max_bytes) and text is never cut short")


def has_unpaired_surrogate(value: object) -> bool:
    """Whether a string anywhere in `value` (dict keys and values, lists) holds a lone UTF-16
    surrogate: no UTF-8 database driver can store one, so one such device report used to fail
    every write batch it landed in."""
    return surrogate_path(value) is not None


def printable_repr(value: object, limit: int = 4000) -> str:
    """An ASCII repr of anything (surrogates and other escapes shown, never raised on), cut to
    `limit` characters: what the ingest keeps of a report it could not store."""
    try:
        text = ascii(value)
    except Exception as exc:  # noqa: BLE001 - a repr that raises must not stop the quarantine
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit - 15] + f"... ({len(text)} chars)"
