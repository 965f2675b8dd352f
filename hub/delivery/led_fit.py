"""Does a led_show's text fit each board? Checked per device when the command is accepted.

A board holds so many bytes of text in its own encoding (UTF-8, or ASCII for a board that cannot
show diacritics, which gets a transliteration). Sent longer text, many boards cut it short and
answer that all went well: an `acked` delivery for a bulletin the commune never saw whole. So a
board the text does not fit gets a `failed` delivery at once, its reason naming the limit and the
text's length in the board's encoding; the command's other devices go on as usual.

The limit: the device's config `led_text_max_bytes` (one board's panel), else its vendor's trait
(hub.vendor_traits.Traits.led_text_max_bytes); no limit known, no check here (the vendor plugin
may still refuse). The encoding: UTF-8 when the device has led.text_unicode and its config does
not say `unicode: false`, as the vendor plugins decide.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.text import TextError, led_fit_problem
from hub.vendor_traits import traits_of
from hub.store.models import Content, Device

CONFIG_KEY = "led_text_max_bytes"
_FALSE = ("false", "0", "no", "off")


def _config_limit(config: Mapping[str, Any]) -> int | None:
    """The device's own limit; a CSV import may give it as text. Unusable values count as unset
    (the registry's check of device config is the vendor's; a wrong value must not block sending)."""
    raw = config.get(CONFIG_KEY)
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


def shows_unicode(device: Device) -> bool:
    """Whether the board is sent UTF-8 (else an ASCII transliteration)."""
    if "led.text_unicode" not in (device.capabilities or ()):
        return False
    raw = (device.config or {}).get("unicode", True)
    return not (raw is False or (isinstance(raw, str) and raw.strip().lower() in _FALSE))


def limit_of(device: Device, vendors: Mapping[str, Any]) -> int | None:
    """The most bytes of text `device` holds, or None when nobody said."""
    own = _config_limit(device.config or {})
    if own is not None:
        return own
    adapter = vendors.get(device.vendor)
    return traits_of(adapter.manifest).led_text_max_bytes if adapter is not None else None


def led_text_of(verb: str, params: Mapping[str, Any], content: Content | None) -> str | None:
    """The text a led_show puts on boards (params.text, else its content's body); None otherwise."""
    if verb != "led_show":
        return None
    text = params.get("text") or (content.body if content is not None else None)
    return text if isinstance(text, str) and text else None


def fit_checker(verb: str, params: Mapping[str, Any], content: Content | None,
                vendors: Mapping[str, Any]) -> Callable[[Device], str | None] | None:
    """A function giving, for one device, why the command's text does not fit it (None: it fits
    or no limit is known); None when the command puts no text on boards."""
    text = led_text_of(verb, params, content)
    if text is None:
        return None

    def problem(device: Device) -> str | None:
        if device.kind != "led_board":
            return None
        limit = limit_of(device, vendors)
        if limit is None:
            return None
        try:
            return led_fit_problem(text, limit, shows_unicode(device))
        except TextError:
            return None  # refused at the door already; the plugin's for_board refuses it again
    return problem
