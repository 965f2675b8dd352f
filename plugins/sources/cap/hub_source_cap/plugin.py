"""Entry point `hub.sources: cap`: CAP 1.2 alerts from one URL or an Atom/RSS index of alerts.

Each document goes through the same steps, in this order, and is refused at the first that fails:
hardened parse → OASIS schema → references and times → signature → mapping to a SourceItem.
`read_alert()` runs them on bytes (for tests and other callers); CapSource.fetch() gets the bytes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validates_schema
from marshmallow.validate import OneOf, Range

from hub.capabilities import PRIORITIES
from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceError, SourceItem, SourceManifest

from hub_source_cap import __version__
from hub_source_cap.fetching import check_url, http_get, index_entries
from hub_source_cap.mapping import (DEFAULT_ADMIN_CODE_NAMES, DEFAULT_CLASS_TABLE, DEFAULT_PREFERRED_LANGUAGES,
                                    Reading, Settings, class_table, referenced_ids, to_reading)
from hub_source_cap.message import (CAP_NS, DEFAULT_MAX_BYTES, CapError, check_times, is_cap, parse_xml, short,
                                    summary, validate)
from hub_source_cap.signature import TrustedCert, load_trusted, verify

log = logging.getLogger(__name__)
SCOPES = ("Public", "Restricted", "Private")


class NameList(fields.Field):
    """One name or a list of names (`admin_code_names: ADMIN_CODE` or `[ADMIN_CODE, vn-admin-code]`)."""

    def __init__(self, **kwargs: Any) -> None:
        # how `hub plugins --json` describes it (apispec passes anyOf/description through)
        kwargs.setdefault("metadata", {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                                       "description": "one name or a list of names"})
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValidationError("expected a name or a list of names")
        return [v.strip() for v in values]


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.Str(required=True)  # one CAP message, or an Atom/RSS index of them
    timeout_s = fields.Float(load_default=10.0, validate=Range(min=0.1, max=120))
    max_alerts = fields.Int(load_default=50, validate=Range(min=1, max=1000))  # per fetch, from an index
    max_bytes = fields.Int(load_default=DEFAULT_MAX_BYTES, validate=Range(min=1000, max=50_000_000))
    headers = fields.Dict(keys=fields.Str(), values=fields.Str(), load_default=dict)  # e.g. Authorization
    require_signature = fields.Bool(load_default=False)
    trusted_certificates = NameList(load_default=list)  # PEM text or paths to PEM files
    admin_code_names = NameList(load_default=lambda: list(DEFAULT_ADMIN_CODE_NAMES))
    preferred_languages = NameList(load_default=lambda: list(DEFAULT_PREFERRED_LANGUAGES))
    default_language = fields.Str(load_default="en-US")
    scopes = fields.List(fields.Str(validate=OneOf(SCOPES)), load_default=lambda: ["Public"])
    class_table = fields.List(fields.Dict(), load_default=lambda: [dict(r) for r in DEFAULT_CLASS_TABLE])
    default_class = fields.Str(load_default="normal", validate=OneOf(PRIORITIES))

    @validates_schema
    def _coherent(self, data: dict[str, Any], **kwargs: Any) -> None:
        try:
            check_url(data.get("url", "http://x"), "url")
            class_table(data.get("class_table", []))
            trusted = load_trusted(data.get("trusted_certificates", []))
        except SourceError as exc:
            raise ValidationError(str(exc)) from None
        if data.get("require_signature") and not trusted:
            raise ValidationError("require_signature needs at least one entry in trusted_certificates")


def settings_of(config: Mapping[str, Any]) -> Settings:
    """Reading settings from a configuration (loaded or raw: missing keys take the defaults)."""
    return Settings(
        rules=class_table(config.get("class_table", DEFAULT_CLASS_TABLE)),
        default_class=config.get("default_class", "normal"),
        admin_code_names=tuple(_names(config.get("admin_code_names", DEFAULT_ADMIN_CODE_NAMES))),
        preferred_languages=tuple(_names(config.get("preferred_languages", DEFAULT_PREFERRED_LANGUAGES))),
        default_language=config.get("default_language", "en-US"),
        scopes=tuple(config.get("scopes", ("Public",))))


def _names(value: str | Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def read_alert(data: bytes, config: Mapping[str, Any] | None = None, url: str | None = None,
               settings: Settings | None = None, trusted: list[TrustedCert] | None = None) -> Reading:
    """One CAP document's item (or why none): raises CapError naming line and reason when refused.
    `config` takes the same keys as the source's configuration (url not needed)."""
    config = dict(config or {})
    settings = settings or settings_of(config)
    trusted = trusted if trusted is not None else load_trusted(_names(config.get("trusted_certificates", [])))
    where = url or "CAP message"
    root = parse_xml(data, where, int(config.get("max_bytes", DEFAULT_MAX_BYTES)))
    if not is_cap(root):
        raise CapError(f"{where}: line {root.sourceline}: the root element is {short(str(root.tag))}, "
                       f"not a CAP 1.2 alert ({{{CAP_NS}}}alert)", line=root.sourceline)
    validate(root, where)
    refs = root.find(f"{{{CAP_NS}}}references")
    if refs is not None:
        referenced_ids(refs.text or "", where, refs.sourceline)
    check_times(root, where)
    signed, signature = verify(data, root, trusted, bool(config.get("require_signature", False)), where)
    if signed is not root:
        validate(signed, where)  # what the signature covers is what is read: check it too
    return to_reading(summary(signed), settings, where, url, {"signature": signature})


class CapSource(Source):
    manifest = SourceManifest(name="cap", title="CAP 1.2 alerts (a URL or an Atom/RSS index of alerts)",
                              version=__version__, config_schema=ConfigSchema,
                              formats=("cap-1.2", "atom-1.0", "rss-2.0"), min_interval_s=30)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings = settings_of(self.config)
        self.trusted = load_trusted(_names(self.config.get("trusted_certificates", [])))
        self.last_notes: list[str] = []  # what the last fetch skipped or refused, and why (notes())

    def read(self, data: bytes, url: str | None = None) -> Reading:
        """One document with this source's settings."""
        return read_alert(data, self.config, url, self.settings, self.trusted)

    def read_document(self, data: bytes) -> SourceItem:
        """One CAP document handed in (an emergency fired from an alert): its item, or CapError
        naming line and reason; a message that gives no bulletin (Ack, System, another scope) too."""
        reading = self.read(data)
        if reading.item is None:
            raise CapError(reading.note or "CAP message: gives no bulletin")
        return reading.item

    def _get(self, url: str) -> bytes:
        return http_get(url, float(self.config.get("timeout_s", 10.0)),
                        int(self.config.get("max_bytes", DEFAULT_MAX_BYTES)), self.config.get("headers"))

    def collect(self, since: datetime | None, limit: int | None = None) -> tuple[list[SourceItem], list[str]]:
        """(items, notes). A single-alert URL whose message is refused raises; in an index, a refused or
        unreachable alert is a note and the others still come in — unless every one failed transiently."""
        url = self.config["url"]
        body = self._get(url)
        root = parse_xml(body, url, int(self.config.get("max_bytes", DEFAULT_MAX_BYTES)))
        if is_cap(root):
            reading = self.read(body, url)
            return ([reading.item] if reading.item else []), ([reading.note] if reading.note else [])
        entries = index_entries(root, url)
        if entries is None:
            raise SourceError(f"{url}: not a CAP alert, an Atom feed or an RSS feed (root element "
                              f"{short(str(root.tag))})")
        notes: list[str] = []
        fresh = [e for e in entries if since is None or e.updated is None or e.updated > since]
        cap = min(limit or self.config.get("max_alerts", 50), self.config.get("max_alerts", 50))
        if len(fresh) > cap:
            notes.append(f"{url}: the index lists {len(fresh)} new alerts; read the first {cap} (max_alerts)")
        readings: list[Reading] = []
        transient = 0
        for entry in fresh[:cap]:
            try:
                readings.append(self.read(self._get(check_url(entry.url, "index link")), entry.url))
            except SourceError as exc:
                transient += exc.transient
                notes.append(f"refused: {exc}" if isinstance(exc, CapError) else f"not read: {exc}")
        if fresh and transient == len(fresh[:cap]):
            raise SourceError(f"{url}: none of the {transient} alerts could be fetched: {notes[-1]}", transient=True)
        items: dict[str, SourceItem] = {}
        for reading in readings:
            if reading.note:
                notes.append(reading.note)
            if reading.item is not None and reading.item.external_id not in items:
                items[reading.item.external_id] = reading.item
        # oldest first, so that an Update or Cancel comes after the alert it refers to
        return sorted(items.values(), key=lambda i: i.published_at), notes  # type: ignore[arg-type,return-value]

    def fetch(self, since: datetime | None) -> list[SourceItem]:
        items, self.last_notes = self.collect(since)
        for note in self.last_notes:
            log.info("source cap %s: %s", self.config.get("url"), note)
        return items

    def notes(self) -> list[str]:
        """What the last fetch skipped or refused (Ack/Error, System, other scopes, refused alerts)."""
        return list(self.last_notes)

    def test(self) -> SourceCheck:
        try:
            items, notes = self.collect(None, limit=3)
        except SourceError as exc:
            return SourceCheck(False, str(exc))
        detail = f"{len(items)} alert(s) read" + (f"; {'; '.join(notes)}" if notes else "")
        return SourceCheck(True, detail, tuple(items[:3]))


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(CapSource)


__all__ = ["CapSource", "ConfigSchema", "read_alert", "settings_of"]
