"""The stations a province relays (*tiếp sóng*): a list operators pick from, not a URL typed each time.

The file named by the setting `stations_file`:

    stations:
      - id: vov1                        # unique; what POST /api/relays names (station_id)
        name: "VOV1 – Đài Tiếng nói Việt Nam"
        url: https://stream.vov.vn/vov1  # http(s) only: ffmpeg pulls it and pushes to the hub's Icecast
        areas: ["80"]                    # optional: offered only to operators of these areas' subtrees
                                         # (and of the areas above them); absent: to everyone

An administrator edits it on the hub's host; it is read at each use, so an edit needs no restart.
A station's URL is the hub's own outbound request, so a URL at one of the hub's own services (Redis,
the database, the API, a broker, the hub's Icecast itself) is refused, as for content sources.
Every error is one line naming the file, the station and the key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hub.addresses import AddressPolicy, Service, valid_host
from hub.config import Settings
from hub.config_file import entry_name, parse_list, read_text, refuse_unknown_keys

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_KEYS = {"id", "name", "url", "areas"}


class StationError(ValueError):
    """The stations file (or one station in it) is wrong; one line naming file, station and key."""


@dataclass(frozen=True)
class Station:
    id: str
    name: str
    url: str
    areas: tuple[str, ...] = ()  # empty: every area

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "url": self.url, "areas": list(self.areas)}

    def offered_to(self, actor_paths: tuple[str, ...] | None, station_paths: list[str]) -> bool:
        """Whether an actor whose subtrees are `actor_paths` (None: all) may relay this station;
        `station_paths` are the paths of the station's areas. A commune sees its province's
        station, and a province sees its communes' stations."""
        if actor_paths is None or not self.areas:
            return True
        return any(a.startswith(s) or s.startswith(a) for a in actor_paths for s in station_paths)


def hub_icecast(settings: Settings) -> Service:
    return Service("Icecast (icecast_host, icecast_port)", settings.icecast_host, settings.icecast_port)


def parse_entry(entry: Any, where: str, policy: AddressPolicy) -> Station:
    sid = entry_name(entry, where, "station", StationError, key="id", pattern=_ID, keys_shown="id, name, url, areas")
    where = f"{where} {sid}"
    refuse_unknown_keys(entry, where, _KEYS, StationError, "a station has id, name, url, areas")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise StationError(f"{where}: name: expected text of 1-200 characters, got {name!r}")
    url = entry.get("url")
    if not isinstance(url, str) or not url.isprintable() or " " in url:
        raise StationError(f"{where}: url: expected an http(s) URL, got {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise StationError(f"{where}: url: the port of {url!r} is not a number in 1-65535") from None
    # ffmpeg reads many protocols (file:, concat:, pipe:…): a station is a web stream, nothing else
    if parts.scheme not in ("http", "https") or not parts.hostname or not valid_host(parts.hostname):
        raise StationError(f"{where}: url: expected http(s)://host[:port]/path, got {url!r}")
    own = policy.own_service(parts.hostname, port)
    if own is not None:
        raise StationError(f"{where}: url: {parts.hostname}:{port} is the hub's own {own}; a station can never "
                           f"be one")
    areas = entry.get("areas") or []
    if isinstance(areas, (str, int)) and not isinstance(areas, bool):
        areas = [areas]
    if not isinstance(areas, list) or not all(isinstance(a, (str, int)) and not isinstance(a, bool) for a in areas):
        raise StationError(f"{where}: areas: expected a list of area codes, got {entry.get('areas')!r}")
    return Station(sid, name.strip(), url, tuple(str(a) for a in areas))


def parse_text(text: str, origin: str, policy: AddressPolicy) -> dict[str, Station]:
    return parse_list(text, origin, "stations", "station", lambda entry, where: parse_entry(entry, where, policy),
                      lambda station: station.id, StationError, key="id")


def policy_for(settings: Settings) -> AddressPolicy:
    """The hub's own services, its Icecast among them (relaying itself would loop)."""
    base = AddressPolicy.from_settings(settings)
    return AddressPolicy(base.serial_prefixes, base.networks, (*base.services, hub_icecast(settings)))


def load_stations(settings: Settings, path: str | Path | None = None) -> dict[str, Station]:
    """The stations of `path` (default: the setting stations_file; unset: none), by id."""
    path = settings.stations_file if path is None else path
    if not path:
        return {}
    return parse_text(read_text(path, "stations", StationError), str(path), policy_for(settings))
