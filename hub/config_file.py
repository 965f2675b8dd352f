"""A province's YAML lists (the sources, outputs and stations files), read one way.

Each file is a mapping with one key holding a list of named entries; each entry is checked by its
own module (which keys, which plugin kind), and every error is one line naming the file, the entry
and the key, so an administrator editing the file on a running hub sees what to fix. What is
common lives here: the file's shape, `${ENV}` expansion, the head of an entry (a mapping with a
well-formed name, no unknown key) and `ConfigBook`, the file re-read when it changes, which keeps
the last good list when an edit is broken and logs each change of state once.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENTRY_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
# A file written moments ago may have been read half-written, and a second write within the file
# system's timestamp granularity keeps its mtime: until this much older, it is read at every refresh.
SETTLE_NS = 2_000_000_000

T = TypeVar("T")


def expand(value: Any, where: str, env: Mapping[str, str], error: type[ValueError]) -> Any:
    """`value` with every ${NAME} replaced from `env`, however deep; `error` names an unset one."""
    if isinstance(value, dict):
        return {k: expand(v, f"{where}.{k}", env, error) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, f"{where}[{i}]", env, error) for i, v in enumerate(value)]
    if isinstance(value, str):
        for name in ENV_REF.findall(value):
            if name not in env:
                raise error(f"{where}: environment variable {name} is not set")
        return ENV_REF.sub(lambda m: env[m.group(1)], value)
    return value


def entry_name(entry: Any, where: str, noun: str, error: type[ValueError], *, key: str = "name",
               pattern: re.Pattern[str] = ENTRY_NAME, keys_shown: str) -> str:
    """The name (under `key`) of one entry; `error` when the entry is no mapping or the name is wrong."""
    if not isinstance(entry, dict):
        raise error(f"{where}: each {noun} is a mapping of keys ({keys_shown})")
    name = entry.get(key)
    if not isinstance(name, str) or not pattern.match(name):
        raise error(f"{where}: {key}: expected lower-case letters, digits, '-', '_' or '.', got {name!r}")
    return name


def refuse_unknown_keys(entry: dict[str, Any], where: str, known: Collection[str], error: type[ValueError],
                        hint: str) -> None:
    """`error` naming the first key of `entry` not in `known`; `hint` says which keys there are."""
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise error(f"{where}: {unknown[0]}: unknown key ({hint})")


def parse_list(text: str, origin: str, section: str, noun: str, parse_one: Callable[[Any, str], T],
               name_of: Callable[[T], str], error: type[ValueError], key: str = "name") -> dict[str, T]:
    """Every entry of the list under `section` in a file's text, by name, each made by
    `parse_one(entry, "<origin>: <noun>")`; `error` for the first thing wrong."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise error(f"{origin}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict) or set(data) - {section}:
        raise error(f"{origin}: expected a mapping with one key, `{section}`, holding a list")
    entries = data.get(section) or []
    if not isinstance(entries, list):
        raise error(f"{origin}: {section}: expected a list of {section}")
    found: dict[str, T] = {}
    for i, entry in enumerate(entries):
        item = parse_one(entry, f"{origin}: {noun}")
        name = name_of(item)
        if name in found:
            raise error(f"{origin}: {noun} {name}: {key}: given twice (entry {i + 1})")
        found[name] = item
    return found


def read_text(path: str | Path, kind: str, error: type[ValueError]) -> str:
    """The text of the `kind` file ("sources") at `path`; an unreadable or absent one is `error`."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the {kind} file: {exc.strerror}") from None


class ConfigBook(Generic[T]):
    """The running list of one file: re-read when it changes (mtime, then content digest), so an
    edit takes effect without a restart. A broken edit leaves the last good list running; `error`
    says what is wrong until the file is fixed. A subclass says how the text is parsed (`parse`)
    and whether a new list changes anything (`adopt`)."""

    kind = "configuration"  # "sources": in "cannot read the sources file" and the log lines
    error_type: type[ValueError] = ValueError

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, T] = {}
        self.error: str | None = None
        self._mtime: int | None = None
        self._digest: str | None = None
        self._reported: str | None = None

    def parse(self, text: str) -> dict[str, T]:
        raise NotImplementedError

    def adopt(self, entries: dict[str, T]) -> bool:
        """Run `entries` from now on; whether the running configuration changed."""
        self.entries = entries
        return True

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the running configuration changed."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
        except OSError as exc:
            self.error = f"{self.path}: cannot read the {self.kind} file: {exc.strerror}"
            self._mtime = None
            return False
        if stat.st_mtime_ns == self._mtime:
            return False
        settled = time.time_ns() - stat.st_mtime_ns > SETTLE_NS
        self._mtime = stat.st_mtime_ns if settled else None  # not settled: read again at the next refresh
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            self.error = f"{self.path}: cannot read the {self.kind} file: {exc.strerror}"
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest and self.error is None:
            return False
        try:
            entries = self.parse(raw.decode("utf-8", "replace"))
        except self.error_type as exc:
            self.error = str(exc)
            self._digest = digest  # the same broken text is reported once, not at every tick
            return False
        self.error, self._digest = None, digest
        return self.adopt(entries)

    def report(self, log: logging.Logger, record: Callable[[str, list[str]], None]) -> None:
        """Log a change of the file's state once: loaded, or broken with the list still running;
        `record(error, running names)` keeps a broken file's error (the audit log)."""
        error = self.error
        if error == self._reported:
            return
        self._reported = error
        if error is None:
            log.info("%s file %s: loaded, %d %s", self.kind, self.path, len(self.entries), self.kind)
            return
        running = ", ".join(self.entries) or "none"
        log.error("%s (still running the last good configuration: %s)", error, running)
        record(error, sorted(self.entries))
