"""Configured sources as people see them (API, CLI): their configuration, health, and a try-out.

The parts: hub.content.source_config (the file), hub.content.polling (the tick and the jobs),
hub.content.intake (items into contents). This module only reads and reports.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.content.source_config import SourceConfig, SourceConfigError, load_file, parse_entry, parse_text
from hub.runtime import Runtime
from hub.source import SourceCheck, SourceError
from hub.store.content_tables import SourceStatus


def configured(rt: Runtime, path: str | None = None) -> tuple[dict[str, SourceConfig], str | None]:
    """(sources by name, the file's error or None). No file configured: no sources, no error."""
    path = path if path is not None else rt.settings.sources_file
    if not path:
        return {}, None
    try:
        return load_file(path, rt.plugins), None
    except SourceConfigError as exc:
        return {}, str(exc)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t else None


def health_of(st: SourceStatus | None) -> dict[str, Any]:
    """What a source last did; all empty before its first poll."""
    if st is None:
        return {"last_attempt_at": None, "last_success_at": None, "last_error": None, "last_error_at": None,
                "failures": 0, "items_fetched": 0, "items_last": 0, "next_poll_at": None, "notes": []}
    return {"last_attempt_at": _iso(st.last_attempt_at), "last_success_at": _iso(st.last_success_at),
            "last_error": st.last_error, "last_error_at": _iso(st.last_error_at), "failures": st.failures or 0,
            "items_fetched": st.items_fetched or 0, "items_last": st.items_last or 0,
            "next_poll_at": _iso(st.next_poll_at), "notes": list(st.notes or [])}


def _row(cfg: SourceConfig | None, name: str, st: SourceStatus | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "configured": cfg is not None,
                           "plugin": cfg.plugin if cfg else (st.plugin if st else None)}
    if cfg is not None:
        out.update({"enabled": cfg.enabled, "interval_s": cfg.interval_s, "area_code": cfg.area_code,
                    "category": cfg.category, "auto_publish": cfg.auto_publish,
                    "allow_exercise": cfg.allow_exercise, "emergency": cfg.emergency, "config": cfg.shown()})
    out["health"] = health_of(st)
    return out


def describe(rt: Runtime) -> dict[str, Any]:
    """Every configured source with its health, plus sources that still have health but are no
    longer configured (removed from the file, or unreadable while the file is broken)."""
    sources, error = configured(rt)
    with rt.db.session() as s:
        statuses = {st.name: st for st in s.scalars(select(SourceStatus))}
    rows = [_row(cfg, name, statuses.get(name)) for name, cfg in sources.items()]
    rows += [_row(None, name, st) for name, st in sorted(statuses.items()) if name not in sources]
    return {"file": rt.settings.sources_file or None, "error": error, "sources": rows}


def describe_one(rt: Runtime, name: str) -> dict[str, Any] | None:
    for row in describe(rt)["sources"]:
        if row["name"] == name:
            return row
    return None


def one(rt: Runtime, name: str, path: str | None = None) -> SourceConfig:
    """The source `name` of the file (default: sources_file); SourceConfigError if absent or broken."""
    path = path if path is not None else rt.settings.sources_file
    if not path:
        raise SourceConfigError("no sources file: set sources_file (HUB_SOURCES_FILE)")
    sources = load_file(Path(path), rt.plugins)
    if name not in sources:
        raise SourceConfigError(f"{path}: no source named {name!r} (configured: {', '.join(sources) or 'none'})")
    return sources[name]


def try_source(rt: Runtime, cfg: SourceConfig) -> SourceCheck:
    """The plugin's test() on `cfg`; a plugin that raises instead of answering counts as a failure."""
    try:
        cfg.refuse_hub_services(rt.address_policy())
        return cfg.instance(rt.plugins).test()
    except SourceError as exc:
        return SourceCheck(False, str(exc))
    except Exception as exc:  # the plugin broke its contract: say so rather than fail the caller
        return SourceCheck(False, f"test() raised {type(exc).__name__}: {exc}")


def try_entry(rt: Runtime, entry: Any) -> SourceCheck:
    """A source entry not saved anywhere (the API's body), checked and tried."""
    try:
        cfg = parse_entry(entry, "source", rt.plugins)
    except SourceConfigError as exc:
        return SourceCheck(False, str(exc))
    return try_source(rt, cfg)


def check_text(rt: Runtime, text: str, origin: str) -> dict[str, SourceConfig]:
    """A whole sources file's text, checked (SourceConfigError), for tools that validate before saving."""
    return parse_text(text, origin, rt.plugins)


def check_dict(check: SourceCheck) -> dict[str, Any]:
    return {"ok": check.ok, "detail": check.detail,
            "sample": [{"external_id": i.external_id, "title": i.title} for i in check.sample]}
