"""What a content source is: RSS, CAP alerts, the national system, another hub.

The hub calls `test()` before it saves a source's configuration (so an editor hears at once that
the feed is unreachable or not a feed), then `fetch(since)` on a schedule. Every item carries a
stable `external_id`: the hub keeps one record per (source, external_id), so a source may return
items it returned before, and an edited item comes back under the same id. Sources never touch
the database; nothing a source returns is broadcast before an editor approves it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from hub.capabilities import PRIORITIES
from hub.contract import (BaseManifest, ContractError, Health, ManifestError, Plugin, check_json, check_language,
                          check_text, stub)

MAX_EXTERNAL_ID = 500


class SourceError(ContractError):
    """A source item or manifest breaks the contract, or a fetch failed; the message says which.
    `transient=True`: worth retrying later (timeout, 5xx), as opposed to a wrong configuration."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, kw_only=True)
class SourceManifest(BaseManifest):
    kind: ClassVar[str] = "source"
    formats: tuple[str, ...] = ()  # what it reads, for people: ("rss-2.0", "atom-1.0"), ("cap-1.2",)
    min_interval_s: float = 60.0  # the hub calls fetch() at most this often per configured source

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.formats, str):
            raise ManifestError(f"source {self.name}: formats must be a tuple of names, not one string")
        object.__setattr__(self, "formats", tuple(self.formats))
        for name in self.formats:
            check_text(name, f"source {self.name}: formats", ManifestError, required=True)
        if not isinstance(self.min_interval_s, int | float) or self.min_interval_s <= 0:
            raise ManifestError(f"source {self.name}: min_interval_s must be a positive number of seconds")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "kind": self.kind, "formats": list(self.formats),
                "min_interval_s": self.min_interval_s}


@dataclass(frozen=True)
class MediaRef:
    """An attachment an item points to (audio, image); the hub fetches it only when needed."""

    url: str
    media_type: str | None = None  # "audio/mpeg", "image/png"
    size: int | None = None  # bytes, when the feed says

    def __post_init__(self) -> None:
        check_text(self.url, "attachment url", SourceError, required=True)


@dataclass(frozen=True)
class SourceItem:
    """One piece of content as a source found it. Built by the plugin; refused here if malformed."""

    external_id: str  # stable across fetches: the feed's guid, the CAP identifier, a URL
    title: str
    text: str = ""  # the body, plain text
    language: str | None = None  # "vi", "en"… when the source says
    published_at: datetime | None = None  # timezone-aware
    url: str | None = None  # where a person reads the original
    attachments: tuple[MediaRef, ...] = ()
    severity: str | None = None  # a hint only: one of hub.capabilities.PRIORITIES; an editor decides
    raw: dict[str, Any] | None = None  # what the source said, kept for audit; JSON-storable
    category: str | None = None  # the source's own category ("Met", "Safety", "thời sự")
    expires_at: datetime | None = None  # timezone-aware; after it the bulletin is no longer valid
    # Where it is meant for. Administrative unit codes (province, commune) select those areas;
    # polygons and circles select the devices whose coordinates lie inside. All empty: the
    # source's configured default area.
    area_codes: tuple[str, ...] = ()
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # rings of (latitude, longitude), closed or not
    circles: tuple[tuple[float, float, float], ...] = ()  # (latitude, longitude, radius in km)
    # Places the source named but the plugin could not turn into codes or shapes (an areaDesc, a
    # geocode of another scheme): with nothing else to place it, the hub keeps the item unplaced
    # and reports it rather than widening it to the source's default area.
    unresolved_areas: tuple[str, ...] = ()
    # What it does to earlier items of the same source, by their external_id: an update replaces
    # them (their record takes this item's text); a cancel withdraws them and is itself never a
    # bulletin (CAP msgType Cancel). An item cannot both replace and withdraw.
    replaces: tuple[str, ...] = ()
    withdraws: tuple[str, ...] = ()
    exercise: bool = False  # a test, exercise or draft message: never reaches speakers unless the source allows

    def __post_init__(self) -> None:
        if not isinstance(self.external_id, str) or not self.external_id.strip():
            raise SourceError("source item: external_id is required (a stable id such as the feed's guid)")
        where = f"source item {self.external_id[:80]!r}"
        check_text(self.external_id, f"{where}: external_id", SourceError)
        if len(self.external_id) > MAX_EXTERNAL_ID:
            raise SourceError(f"{where}: external_id is longer than {MAX_EXTERNAL_ID} characters")
        check_text(self.title, f"{where}: title", SourceError)
        check_text(self.text, f"{where}: text", SourceError)
        if self.language is not None:
            check_language(self.language, f"{where}: language", SourceError)
        if self.published_at is not None and (not isinstance(self.published_at, datetime)
                                              or self.published_at.utcoffset() is None):
            raise SourceError(f"{where}: published_at must be a timezone-aware datetime")
        if self.url is not None:
            check_text(self.url, f"{where}: url", SourceError, required=True)
        object.__setattr__(self, "attachments", tuple(self.attachments))
        for ref in self.attachments:
            if not isinstance(ref, MediaRef):
                raise SourceError(f"{where}: attachments must be hub.source.MediaRef, not {type(ref).__name__}")
        if self.severity is not None and self.severity not in PRIORITIES:
            raise SourceError(f"{where}: severity {self.severity!r} is not one of {', '.join(PRIORITIES)}")
        if self.raw is not None:
            check_json(self.raw, f"{where}: raw", SourceError)
        if self.category is not None:
            check_text(self.category, f"{where}: category", SourceError)
        if self.expires_at is not None:
            if not isinstance(self.expires_at, datetime) or self.expires_at.utcoffset() is None:
                raise SourceError(f"{where}: expires_at must be a timezone-aware datetime")
            if self.published_at is not None and self.expires_at < self.published_at:
                raise SourceError(f"{where}: expires_at {self.expires_at.isoformat()} is before published_at "
                                  f"{self.published_at.isoformat()}")
        for name in ("area_codes", "replaces", "withdraws", "unresolved_areas"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise SourceError(f"{where}: {name} must be a tuple of strings, not one string")
            object.__setattr__(self, name, tuple(value))
            for one in getattr(self, name):
                check_text(one, f"{where}: {name}", SourceError, required=True)
        if self.replaces and self.withdraws:
            raise SourceError(f"{where}: an item either replaces earlier ones or withdraws them, not both")
        object.__setattr__(self, "polygons", tuple(_ring(r, where) for r in self.polygons))
        object.__setattr__(self, "circles", tuple(_circle(c, where) for c in self.circles))


def _point(lat: object, lon: object, where: str) -> tuple[float, float]:
    if (not isinstance(lat, int | float) or not isinstance(lon, int | float) or isinstance(lat, bool)
            or isinstance(lon, bool) or not -90 <= lat <= 90 or not -180 <= lon <= 180):
        raise SourceError(f"{where}: ({lat!r}, {lon!r}) is not a (latitude, longitude) in degrees")
    return float(lat), float(lon)


def _ring(ring: object, where: str) -> tuple[tuple[float, float], ...]:
    try:
        points = tuple(_point(lat, lon, f"{where}: polygon") for lat, lon in ring)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as e:
        if isinstance(e, SourceError):
            raise
        raise SourceError(f"{where}: a polygon is a sequence of (latitude, longitude) pairs") from None
    if len(set(points)) < 3:
        raise SourceError(f"{where}: a polygon needs at least 3 distinct points")
    return points


def _circle(circle: object, where: str) -> tuple[float, float, float]:
    try:
        lat, lon, radius = circle  # type: ignore[misc]
    except (TypeError, ValueError):
        raise SourceError(f"{where}: a circle is (latitude, longitude, radius in km)") from None
    lat, lon = _point(lat, lon, f"{where}: circle")
    if not isinstance(radius, int | float) or isinstance(radius, bool) or radius < 0:
        raise SourceError(f"{where}: circle radius {radius!r} must be zero or more km")
    return lat, lon, float(radius)


@dataclass(frozen=True)
class SourceCheck:
    """What test() found: whether the configured source can be read, and if not, why."""

    ok: bool
    detail: str = ""  # what is wrong ("HTTP 404 from https://…", "not an RSS or Atom document")
    sample: tuple[SourceItem, ...] = ()  # a few items, to show the editor what will come in


def checked_items(name: str, items: object) -> list[SourceItem]:
    """What fetch() returned, refused unless it is a sequence of SourceItem with distinct ids."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise SourceError(f"source {name}: fetch() must return a list of SourceItem, not {type(items).__name__}")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, SourceItem):
            raise SourceError(f"source {name}: fetch() returned a {type(item).__name__}, not a SourceItem")
        if item.external_id in seen:
            raise SourceError(f"source {name}: fetch() returned external_id {item.external_id!r} twice")
        seen.add(item.external_id)
    return list(items)


class Source(Plugin):
    """Base class of every content source. Subclasses set `manifest` and implement test and fetch."""

    manifest: ClassVar[SourceManifest]
    manifest_type = SourceManifest
    error = SourceError
    required = ("test", "fetch")

    @stub
    def test(self) -> SourceCheck:
        """Try the configuration once (reach the feed, parse it) and say what is wrong. Never
        raises for a bad feed: an unreachable or malformed source is SourceCheck(False, reason)."""
        raise NotImplementedError

    @stub
    def fetch(self, since: datetime | None) -> Sequence[SourceItem]:
        """Items published or changed since `since` (None: whatever the source offers now). Returning
        items seen before is fine. Raise SourceError(…, transient=True) when a retry may help."""
        raise NotImplementedError

    def read_document(self, data: bytes) -> SourceItem:
        """The item of one document handed to the hub directly rather than fetched (a CAP alert
        an operator pastes into an emergency). Optional: a source that cannot raises SourceError.
        A refused document raises SourceError naming where and why (a `line` attribute when the
        format has lines)."""
        raise SourceError(f"source {self.manifest.name} cannot read a document handed to it")

    def notes(self) -> Sequence[str]:
        """What the last fetch passed over or refused, each with why ("alert 12: signature by an
        untrusted certificate", "an Ack message: no bulletin"): shown in the source's health, so an
        editor sees what did not come in. Optional; the default is none."""
        return ()

    def health(self) -> Health:
        """Whether the source can be reached right now."""
        return Health(True)
