"""From a validated CAP message to a hub SourceItem: which info block, which class, which areas.

external_id is "sender,identifier". CAP makes an identifier unique only per sender, and a CAP
`references` entry is "sender,identifier,sent": keeping the sender in the id means an index that
aggregates several senders cannot confuse two alerts that happen to share an identifier, and a
reference maps to an id by dropping its `sent` part. CAP forbids spaces and commas in both fields,
so the comma cannot be ambiguous.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.capabilities import PRIORITIES, PRIORITY_RANK
from hub.source import MediaRef, SourceError, SourceItem

from hub_source_cap.message import CapError, at, cap_time

URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
ANY = "*"

# First matching rule wins; no match: `default_class`. Reasoning in README.md ("Bulletin class").
DEFAULT_CLASS_TABLE: tuple[dict[str, Any], ...] = (
    {"class": "emergency", "urgency": ["Immediate"], "severity": ["Extreme", "Severe"],
     "certainty": ["Observed", "Likely"]},
    {"class": "emergency", "urgency": ["Expected"], "severity": ["Extreme"], "certainty": ["Observed", "Likely"]},
    {"class": "priority", "urgency": ["Immediate", "Expected"], "severity": ["Extreme", "Severe", "Moderate"],
     "certainty": ["Observed", "Likely", "Possible"]},
    {"class": "priority", "urgency": ["Future"], "severity": ["Extreme", "Severe"], "certainty": ["Observed", "Likely"]},
)
DEFAULT_ADMIN_CODE_NAMES = ("ADMIN_CODE", "vn-admin-code")
DEFAULT_PREFERRED_LANGUAGES = ("vi", "vi-VN")
EXERCISE_STATUSES = frozenset({"Exercise", "Test", "Draft"})


@dataclass(frozen=True)
class Rule:
    cls: str
    urgency: frozenset[str]
    severity: frozenset[str]
    certainty: frozenset[str]

    def matches(self, urgency: str, severity: str, certainty: str) -> bool:
        return all(ANY in allowed or value in allowed for allowed, value in
                   ((self.urgency, urgency), (self.severity, severity), (self.certainty, certainty)))


def class_table(rules: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Rules from configuration, refused (naming the rule and value) unless every value is a CAP one."""
    out = []
    for i, rule in enumerate(rules):
        where = f"class_table[{i}]"
        cls = rule.get("class")
        if cls not in PRIORITIES:
            raise SourceError(f"{where}: class {cls!r} is not one of {', '.join(PRIORITIES)}")
        sets = []
        for name, allowed in (("urgency", URGENCY), ("severity", SEVERITY), ("certainty", CERTAINTY)):
            values = rule.get(name, [ANY])
            values = [values] if isinstance(values, str) else list(values)
            bad = [v for v in values if v != ANY and v not in allowed]
            if bad or not values:
                raise SourceError(f"{where}: {name} {bad or values!r}: use {', '.join(allowed)} or '*'")
            sets.append(frozenset(values))
        out.append(Rule(cls, *sets))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """What a source's configuration says about reading messages (see README.md for each key)."""

    rules: tuple[Rule, ...] = field(default_factory=lambda: class_table(DEFAULT_CLASS_TABLE))
    default_class: str = "normal"
    admin_code_names: tuple[str, ...] = DEFAULT_ADMIN_CODE_NAMES
    preferred_languages: tuple[str, ...] = DEFAULT_PREFERRED_LANGUAGES
    default_language: str = "en-US"  # the XSD's default for <language>
    scopes: tuple[str, ...] = ("Public",)

    def classify(self, urgency: str, severity: str, certainty: str) -> tuple[str, int | None]:
        for i, rule in enumerate(self.rules):
            if rule.matches(urgency, severity, certainty):
                return rule.cls, i
        return self.default_class, None


@dataclass(frozen=True)
class Reading:
    """What one document gave: an item, or none and why (Ack, Error, System, out of scope…)."""

    item: SourceItem | None
    note: str = ""
    sent: datetime | None = None


def external_id(sender: str, identifier: str) -> str:
    return f"{sender.strip()},{identifier.strip()}"


def referenced_ids(references: str, where: str, line: int | None) -> tuple[str, ...]:
    """External ids of "sender,identifier,sent sender,identifier,sent …" (CAP 1.2 §3.2.1)."""
    ids: list[str] = []
    for token in references.split():
        parts = token.split(",")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise CapError(f"{at(where, line)}: references entry {token!r} is not sender,identifier,sent",
                           line=line)
        ref = external_id(parts[0], parts[1])
        if ref not in ids:
            ids.append(ref)
    return tuple(ids)


def _pair(text: str, what: str, where: str, line: int | None) -> tuple[float, float]:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        raise CapError(f"{at(where, line)}: {what}: {text!r} is not latitude,longitude", line=line) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(f"{at(where, line)}: {what}: {text!r} is outside the WGS 84 range", line=line)
    return lat, lon


def polygon(text: str, where: str, line: int | None) -> tuple[tuple[float, float], ...]:
    """ "lat,lon lat,lon …" → ring. An unreadable shape refuses the message: dropping it would widen
    the alert to the source's whole default area."""
    ring = tuple(_pair(p, "polygon", where, line) for p in text.split())
    if len(set(ring)) < 3:
        raise CapError(f"{at(where, line)}: polygon needs at least 3 distinct points", line=line)
    return ring


def circle(text: str, where: str, line: int | None) -> tuple[float, float, float]:
    """ "lat,lon radius_km" → (lat, lon, radius)."""
    parts = text.split()
    if len(parts) != 2:
        raise CapError(f"{at(where, line)}: circle {text!r} is not 'latitude,longitude radius'", line=line)
    lat, lon = _pair(parts[0], "circle", where, line)
    try:
        radius = float(parts[1])
    except ValueError:
        radius = -1.0
    if not radius >= 0:
        raise CapError(f"{at(where, line)}: circle radius {parts[1]!r} is not zero or more km", line=line)
    return lat, lon, radius


def _language(info: Mapping[str, Any], settings: Settings) -> str:
    return (info.get("language") or "").strip() or settings.default_language


def pick_info(infos: Sequence[Mapping[str, Any]], settings: Settings) -> int:
    """Index of the first info in a preferred language ("vi" also matches "vi-VN"), else 0."""
    for wanted in settings.preferred_languages:
        w = wanted.lower()
        for i, info in enumerate(infos):
            lang = _language(info, settings).lower()
            if lang == w or lang.split("-")[0] == w.split("-")[0] == w:
                return i
    return 0


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


@dataclass
class Areas:
    codes: list[str] = field(default_factory=list)
    polygons: list[tuple[tuple[float, float], ...]] = field(default_factory=list)
    circles: list[tuple[float, float, float]] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    other_geocodes: list[dict[str, str]] = field(default_factory=list)  # valueNames that are not admin codes

    def add(self, area: Mapping[str, Any], settings: Settings, where: str) -> None:
        line = area.get("line")
        self.descriptions.append(area.get("areaDesc", ""))
        self.polygons += [polygon(p, where, line) for p in area.get("polygon", [])]
        self.circles += [circle(c, where, line) for c in area.get("circle", [])]
        names = {n.lower() for n in settings.admin_code_names}
        for geocode in area.get("geocode", []):
            name, value = geocode.get("valueName", "").strip(), geocode.get("value", "").strip()
            if name.lower() in names and value:
                if value not in self.codes:
                    self.codes.append(value)
            else:
                self.other_geocodes.append({"valueName": name, "value": value})


def to_reading(cap: dict[str, Any], settings: Settings, where: str, url: str | None = None,
               extra: Mapping[str, Any] | None = None) -> Reading:
    """The item a validated message summary (message.summary) gives, or why it gives none; `extra`
    goes into the item's raw record (the signature check, for the audit)."""
    extra = dict(extra or {})
    ident = external_id(cap["sender"], cap["identifier"])
    sent = cap_time(cap["sent"], "sent", where, None)
    status, msg_type, scope = cap["status"], cap["msgType"], cap["scope"]
    what = f"{where}: {msg_type} {ident}"
    if msg_type in ("Ack", "Error"):
        return Reading(None, f"{what}: an {msg_type} answers a message; nothing to broadcast", sent)
    if status == "System":
        return Reading(None, f"{what}: status System (messages between systems); skipped", sent)
    refs = referenced_ids(cap.get("references", ""), where, None)
    if msg_type == "Cancel":
        # Withdrawing never broadcasts anything, so a Cancel is honoured whatever its scope: missing one
        # would leave a stale alert playing.
        if not refs:
            return Reading(None, f"{what}: a Cancel without references withdraws nothing; skipped", sent)
        infos = cap.get("info", [])
        chosen = infos[pick_info(infos, settings)] if infos else {}
        title = _nfc(chosen.get("headline") or cap.get("note") or f"Cancel {', '.join(refs)}")
        item = SourceItem(external_id=ident, title=title, text=_nfc(cap.get("note", "")),
                          language=_language(chosen, settings), published_at=sent, withdraws=refs,
                          exercise=status in EXERCISE_STATUSES,
                          raw={"cap": cap, "source_url": url, "msgType": msg_type, **extra})
        return Reading(item, "", sent)
    if scope not in settings.scopes:
        return Reading(None, f"{what}: scope {scope} is not one this source accepts ({', '.join(settings.scopes)}); "
                             f"skipped", sent)
    infos = cap.get("info", [])
    if not infos:
        return Reading(None, f"{what}: has no info block; nothing to broadcast", sent)
    return Reading(_item(cap, ident, sent, refs, infos, settings, where, url, extra), "", sent)


def _item(cap: dict[str, Any], ident: str, sent: datetime, refs: tuple[str, ...], infos: list[dict[str, Any]],
          settings: Settings, where: str, url: str | None, extra: dict[str, Any]) -> SourceItem:
    chosen_i = pick_info(infos, settings)
    chosen = infos[chosen_i]
    language = _language(chosen, settings)
    # Several infos in the chosen language (CAP allows one per area or per severity): their areas
    # add up and the highest class wins, so no part of the alert is lost by picking one block.
    group = [i for i, info in enumerate(infos) if _language(info, settings).lower() == language.lower()]
    areas = Areas()
    best: str | None = None
    classes: list[dict[str, Any]] = []
    for i in group:
        for area in infos[i].get("area", []):
            areas.add(area, settings, where)
        cls, rule = settings.classify(infos[i]["urgency"], infos[i]["severity"], infos[i]["certainty"])
        classes.append({"info": i, "urgency": infos[i]["urgency"], "severity": infos[i]["severity"],
                        "certainty": infos[i]["certainty"], "class": cls, "rule": rule})
        if best is None or PRIORITY_RANK[cls] > PRIORITY_RANK[best]:
            best = cls
    expires = chosen.get("expires")
    text = "\n\n".join(_nfc(chosen[k]) for k in ("description", "instruction") if chosen.get(k, "").strip())
    attachments = tuple(MediaRef(r["uri"], r.get("mimeType") or None, int(r["size"]) if r.get("size") else None)
                        for r in chosen.get("resource", []) if r.get("uri", "").startswith(("http://", "https://")))
    unresolved = bool(any(infos[i].get("area") for i in group) and not (areas.codes or areas.polygons or areas.circles))
    raw = {"cap": cap, "source_url": url, "msgType": cap["msgType"], "chosen_info": chosen_i,
           "languages": [_language(i, settings) for i in infos], "classification": classes,
           "area_desc": areas.descriptions, "other_geocodes": areas.other_geocodes,
           # areas were given but none is understood here: the hub would fall back to the default area
           "areas_unresolved": unresolved, **extra}
    return SourceItem(
        external_id=ident, title=_nfc(chosen.get("headline") or chosen["event"]), text=text, language=language,
        published_at=sent, url=chosen.get("web") or url, attachments=attachments, severity=best, raw=raw,
        category=chosen["category"][0], expires_at=cap_time(expires, "expires", where, None) if expires else None,
        area_codes=tuple(areas.codes), polygons=tuple(areas.polygons), circles=tuple(areas.circles),
        unresolved_areas=tuple(d for d in areas.descriptions if d) or ("(area without a code or shape)",)
        if unresolved else (),
        replaces=refs if cap["msgType"] == "Update" else (), exercise=cap["status"] in EXERCISE_STATUSES)


__all__ = ["ANY", "CERTAINTY", "DEFAULT_ADMIN_CODE_NAMES", "DEFAULT_CLASS_TABLE", "DEFAULT_PREFERRED_LANGUAGES",
           "EXERCISE_STATUSES", "Reading", "Rule", "SEVERITY", "Settings", "URGENCY", "circle", "class_table",
           "external_id", "pick_info", "polygon", "referenced_ids", "to_reading"]
