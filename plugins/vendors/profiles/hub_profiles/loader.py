"""Where profiles come from: the package's own, then every directory on HUB_PROFILE_PATH.

A bad profile never stops the others: it is reported and skipped. A profile on the path may
replace a built-in of the same name (a province adapting topics), which is logged; two profiles
of the same name on the path are an error for the later one, as is a name an installed Python
vendor plugin already uses.
"""
from __future__ import annotations

import importlib.metadata as md
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from hub_profiles.model import Profile
from hub_profiles.validate import load_file
from hub_profiles.yamlsrc import ProfileError

ENV = "HUB_PROFILE_PATH"
SUFFIXES = (".yaml", ".yml")
OWN_ENTRY_POINT = "profiles"

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    profiles: list[Profile] = field(default_factory=list)
    errors: list[ProfileError] = field(default_factory=list)
    replaced: list[tuple[Profile, Profile]] = field(default_factory=list)  # (built-in, replacement)


def builtin_dir() -> Path:
    return Path(str(files("hub_profiles.profiles")))


def search_path(environ: Mapping[str, str] | None = None) -> list[str]:
    raw = (os.environ if environ is None else environ).get(ENV, "")
    return [entry for entry in raw.split(os.pathsep) if entry.strip()]


def _files_in(entry: str) -> tuple[list[Path], ProfileError | None]:
    p = Path(entry).expanduser()
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in SUFFIXES and f.is_file()), None
    if p.is_file():
        return [p], None
    return [], ProfileError(entry, 0, ENV, "no such directory")


def taken_names() -> dict[str, str]:
    """Vendor names other installed plugins are known by (their entry-point names), which a
    profile must not claim: two adapters with one name would break the hub's vendor list."""
    out = {}
    for ep in md.entry_points(group="hub.vendors"):
        if ep.name != OWN_ENTRY_POINT:
            out[ep.name] = ep.dist.name if ep.dist else ep.name
    return out


def _load_one(path: Path) -> tuple[Profile | None, list[ProfileError]]:
    try:
        return load_file(path)
    except Exception as exc:  # noqa: BLE001 - a validator bug must cost one profile, not the hub
        log.exception("profile %s: unexpected error while validating", path)
        return None, [ProfileError(str(path), 0, "(file)", f"could not be validated: {exc!r}")]


def load_profiles(environ: Mapping[str, str] | None = None, taken: Mapping[str, str] | None = None,
                  extra: Iterable[Path] = ()) -> LoadResult:
    """Every valid profile, built-ins first; `extra` files come after the search path."""
    result = LoadResult()
    taken = taken_names() if taken is None else taken
    by_name: dict[str, Profile] = {}
    builtin: set[str] = set()
    sources: list[tuple[Path, bool]] = [(p, True) for p in sorted(builtin_dir().iterdir())
                                        if p.suffix in SUFFIXES]
    for entry in search_path(environ):
        found, problem = _files_in(entry)
        if problem is not None:
            result.errors.append(problem)
        sources += [(p, False) for p in found]
    sources += [(Path(p), False) for p in extra]
    for path, is_builtin in sources:
        profile, errors = _load_one(path)
        result.errors.extend(errors)
        if profile is None:
            continue
        if profile.name in taken:
            result.errors.append(ProfileError(profile.source, profile.name_line, "name",
                                              f"{profile.name} is the vendor name of the installed plugin "
                                              f"{taken[profile.name]}"))
            continue
        earlier = by_name.get(profile.name)
        if earlier is not None and earlier.name in builtin and not is_builtin:
            result.replaced.append((earlier, profile))
            builtin.discard(profile.name)
        elif earlier is not None:
            result.errors.append(ProfileError(profile.source, profile.name_line, "name",
                                              f"{profile.name} is already the name of {earlier.source}"))
            continue
        by_name[profile.name] = profile
        if is_builtin:
            builtin.add(profile.name)
    result.profiles = list(by_name.values())
    return result
