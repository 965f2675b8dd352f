"""Writing the published files so that a reader — a web server, a harvester, someone's Excel —
never sees a half-written one: each file is written beside its final name, flushed to disk, then
renamed over it (atomic on POSIX within one file system).

Layout of the published directory:

    datapackage.json            the Data Package: every published file, newest first
    schema.json                 the Table Schema every file follows
    day/2025-09-01.csv  .json   one file per period and format
    week/2025-W36.csv   .json
    month/2025-09.csv   .json

The data files of a period are written first, datapackage.json last, so it never names a file
that is not there yet.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hub_output_opendata.periods import KINDS
from hub_output_opendata.rows import SCHEMA_FILE, schema_text

PACKAGE_FILE = "datapackage.json"
FORMATS = {"csv": "text/csv", "json": "application/json"}
FILE_MODE = 0o644  # open data: readable by the web server that serves it
_DATA_FILE = re.compile(r"^(?P<slug>\d{4}-(?:\d{2}-\d{2}|W\d{2}|\d{2}))\.(?P<fmt>csv|json)$")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: a reader sees the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    # the rename itself survives a power cut only once the directory is on disk
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def data_path(directory: Path, kind: str, slug: str, fmt: str) -> Path:
    return directory / kind / f"{slug}.{fmt}"


def published(directory: Path, kind: str) -> dict[str, set[str]]:
    """The periods of `kind` with files in `directory`: slug → formats present."""
    out: dict[str, set[str]] = {}
    folder = directory / kind
    if folder.is_dir():
        for entry in folder.iterdir():
            m = _DATA_FILE.match(entry.name)
            if m and entry.is_file():
                out.setdefault(m["slug"], set()).add(m["fmt"])
    return out


def prune(directory: Path, kind: str, keep: int | None) -> list[Path]:
    """Delete the files of all but the `keep` newest periods of `kind` (None: keep all); the paths deleted."""
    if keep is None:
        return []
    gone = []
    for slug in sorted(published(directory, kind), reverse=True)[keep:]:
        for fmt in FORMATS:
            path = data_path(directory, kind, slug, fmt)
            if path.exists():
                path.unlink()
                gone.append(path)
    return gone


def package(directory: Path, meta: dict[str, Any], generated_at: datetime) -> dict[str, Any]:
    """The Data Package descriptor of what `directory` holds now."""
    resources = []
    for kind in KINDS:
        for slug, fmts in sorted(published(directory, kind).items(), reverse=True):
            for fmt in (f for f in FORMATS if f in fmts):
                resources.append({
                    "name": f"statistics-{kind}-{slug}-{fmt}".lower(),
                    "title": f"{meta['title']} — {kind} {slug}",
                    "type": "table", "profile": "tabular-data-resource",
                    "path": f"{kind}/{slug}.{fmt}", "format": fmt, "mediatype": FORMATS[fmt],
                    "encoding": "utf-8", "schema": SCHEMA_FILE})
    descriptor: dict[str, Any] = {
        "name": meta["name"], "title": meta["title"], "description": meta["description"],
        "profile": "tabular-data-package", "created": generated_at.isoformat(timespec="seconds"),
        "licenses": [{"name": meta["license"], "path": meta["license_url"]} if meta.get("license_url")
                     else {"name": meta["license"]}],
        "keywords": ["thông tin cơ sở", "grassroots information", "loa truyền thanh", "open data"],
        "resources": resources}
    if meta.get("publisher"):
        descriptor["contributors"] = [{"title": meta["publisher"], "role": "publisher"}]
    return descriptor


def publish_period(directory: Path, kind: str, slug: str, files: dict[str, bytes]) -> None:
    """Write one period's files (format → bytes) and the schema, each atomically."""
    for fmt, data in files.items():
        write_atomic(data_path(directory, kind, slug, fmt), data)
    schema_path = directory / SCHEMA_FILE
    wanted = schema_text().encode("utf-8")
    if not schema_path.exists() or schema_path.read_bytes() != wanted:
        write_atomic(schema_path, wanted)


def publish_package(directory: Path, meta: dict[str, Any], generated_at: datetime) -> dict[str, Any]:
    descriptor = package(directory, meta, generated_at)
    text = json.dumps(descriptor, ensure_ascii=False, indent=2) + "\n"
    write_atomic(directory / PACKAGE_FILE, text.encode("utf-8"))
    return descriptor
