"""The console's languages and times: Vietnamese by default, English on request, every time shown in
the province's zone.

The catalogues are the .po files under translations/ (the one place a user-facing string of the
console lives); they are compiled in memory when first used, so no generated .mo file is kept in
the repository or needs a build step, and an edited .po takes effect at the next start.
"""
from __future__ import annotations

import io
from datetime import datetime, tzinfo
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import flask
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask_babel import Babel, Domain, format_datetime, get_locale
from flask_babel import lazy_gettext as _l

from hub.store.models import DeliveryState

TRANSLATIONS = Path(__file__).parent / "translations"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "hub_lang"
DEFAULT_ZONE = "Asia/Ho_Chi_Minh"  # the province's, unless the hub's settings name another (`timezone`)


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: str) -> NullTranslations:
    """The language's .po compiled in memory (a .po that does not exist: no translation)."""
    po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return NullTranslations()
    with po.open("rb") as fh:
        parsed = read_po(fh, locale=lang)
    mo = io.BytesIO()
    write_mo(mo, parsed)
    mo.seek(0)
    return Translations(mo)


class CatalogueDomain(Domain):  # type: ignore[misc]
    """Flask-Babel's domain, reading the catalogues compiled in memory instead of .mo files."""

    def get_translations(self) -> NullTranslations:
        return catalogue(str(get_locale() or DEFAULT_LANGUAGE))


class ConsoleBabel(Babel):  # type: ignore[misc]
    @cached_property
    def domain_instance(self) -> Domain:
        return CatalogueDomain()


def chosen_language() -> str:
    """The language the reader picked (a cookie), else Vietnamese: commune staff read Vietnamese."""
    lang = flask.request.cookies.get(LANG_COOKIE, "") if flask.has_request_context() else ""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def zone_name(settings: Any) -> str:
    # `timezone` is the hub's setting for the province's zone where the running hub has it
    return str(getattr(settings, "timezone", None) or DEFAULT_ZONE)


@lru_cache(maxsize=8)
def zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def init_babel(app: flask.Flask, settings: Any) -> None:
    ConsoleBabel(app, default_locale=DEFAULT_LANGUAGE, locale_selector=chosen_language,
                 timezone_selector=lambda: zone_name(settings))
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["iso"] = iso
    app.jinja_env.filters["word"] = word


def province_zone() -> tzinfo:
    """The zone of the hub serving this request."""
    return zone(zone_name(flask.current_app.extensions["hub.runtime"].settings))


def zone_label() -> str:
    """The province's zone as a reader knows it: "UTC+07:00"."""
    offset = datetime.now(province_zone()).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def when(dt: datetime | None, style: str = "datetime") -> str:
    """A stored (UTC) time as the province reads it: 05/12/2026 14:30:05, or the time alone."""
    if dt is None:
        return "—"
    pattern = {"datetime": "dd/MM/yyyy HH:mm:ss", "time": "HH:mm:ss", "date": "dd/MM/yyyy",
               "short": "dd/MM HH:mm"}[style]
    return format_datetime(dt, pattern)


def iso(dt: datetime | None) -> str:
    """ISO 8601 with the province's offset, for <time datetime=…>."""
    return "" if dt is None else dt.astimezone(province_zone()).isoformat()


# The words the hub stores (states, kinds, verbs, classes) as a reader sees them.
WORDS: dict[str, Any] = {
    # a device's operating state
    "online": _l("online"), "offline": _l("offline"), "degraded": _l("faulty"), "unknown": _l("state unknown"),
    # a delivery's state (the enum's members: hub/store/models.py is where states are spelt)
    DeliveryState.SCHEDULED: _l("waiting for its start time"), DeliveryState.QUEUED: _l("waiting to be sent"),
    DeliveryState.SENT: _l("sent, awaiting reply"), DeliveryState.ACKED: _l("confirmed by the device"),
    DeliveryState.FAILED: _l("failed to deliver"), DeliveryState.EXPIRED: _l("no reply in time"),
    DeliveryState.UNSUPPORTED: _l("not supported by the device"),
    DeliveryState.SUPERSEDED: _l("replaced by a newer command"),
    # kinds
    "speaker": _l("loudspeaker cluster"), "led_board": _l("LED board"),
    # priority classes
    "normal": _l("normal"), "priority": _l("priority"), "emergency": _l("emergency"),
    # verbs
    "play": _l("play a bulletin"), "stop": _l("stop"), "set_volume": _l("set volume"),
    "relay_start": _l("start relaying a stream"), "relay_stop": _l("stop relaying"),
    "led_show": _l("show text on boards"), "led_clear": _l("clear boards"),
    "set_brightness": _l("set brightness"), "power": _l("power on or off"),
    "sync_schedule": _l("send a schedule"),
    # roles
    "administrator": _l("administrator"), "editor": _l("editor"), "approver": _l("approver"),
    "operator": _l("operator"), "viewer": _l("viewer"),
    # an administrator's switch
    "enabled": _l("enabled"), "disabled": _l("disabled"),
}


def word(key: str | None) -> str:
    """The reader's word for a stored value; the value itself when the catalogue has none."""
    if key is None:
        return "—"
    found = WORDS.get(key)
    return str(found) if found is not None else key


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LANG_COOKIE", "WORDS", "catalogue", "init_babel", "iso", "province_zone",
           "when", "word", "zone_name"]
