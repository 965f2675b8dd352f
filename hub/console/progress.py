"""A command's progress, device by device, live: the page shows every delivery row the reader may
see, and a server-sent event stream sends each row again when it changes, until every device has
reached a terminal state (then a `done` event, and the stream ends).

The stream reads the deliveries table every POLL_S: the rows are the truth (a state is a claim to a
province, and only what the ingest recorded is shown), and a poll needs no channel that a worker
or the ingest would have to publish on. A stream lasts at most STREAM_MAX_S; the browser's
EventSource then opens it again by itself and gets every row afresh.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import flask
from sqlalchemy import select

from hub.access.permissions import ANYONE
from hub.broadcast import emergency
from hub.console.common import console_blueprint, runtime
from hub.console.scope import devices_in, my_paths, sees_all_of, visible_command
from hub.store.models import DELIVERY_STATES, TERMINAL_STATES, Area, Delivery, Device

bp = console_blueprint("console_progress", __name__)

RULES = {"progress": {"GET": ANYONE},
         "events": {"GET": ANYONE}}

POLL_S = 0.5
KEEPALIVE_S = 15.0
STREAM_MAX_S = 300.0
RETRY_MS = 2000


def rows_of(s: Any, command_id: str, paths: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """The command's deliveries the reader may see, each naming its device and commune."""
    stmt = (select(Delivery, Device.name, Area.name, Area.code)
            .join(Device, Device.id == Delivery.device_id, isouter=True)
            .join(Area, Area.code == Device.area_code, isouter=True)
            .where(Delivery.command_id == command_id).order_by(Area.path, Delivery.device_id))
    if paths is not None:
        stmt = stmt.where(Delivery.device_id.in_(select(Device.id).where(devices_in(paths))))
    return [{"d": d, "device_name": name, "area_name": area_name, "area_code": area_code}
            for d, name, area_name, area_code in s.execute(stmt)]


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_state = dict.fromkeys(DELIVERY_STATES, 0)
    for r in rows:
        by_state[r["d"].state] += 1
    ended = sum(by_state[s] for s in TERMINAL_STATES)
    return {"by_state": by_state, "total": len(rows), "ended": ended,
            "percent": round(100 * ended / len(rows)) if rows else 100, "finished": ended == len(rows)}


def _scope_for(s: Any, command_id: str) -> tuple[Any, tuple[str, ...] | None]:
    cmd = visible_command(s, command_id)
    if cmd is None:
        flask.abort(404)
    return cmd, None if sees_all_of(s, cmd) else my_paths(s)


@bp.get("/console/commands/<command_id>")
def progress(command_id: str) -> Any:
    with runtime().db.session() as s:
        cmd, paths = _scope_for(s, command_id)
        rows = rows_of(s, cmd.id, paths)
        return flask.render_template("command.html", cmd=cmd, rows=rows, summary=summary_of(rows),
                                     terminal=TERMINAL_STATES, emergency=emergency.find(s, cmd.id))


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _fingerprint(d: Delivery) -> tuple[Any, ...]:
    return d.state, d.attempts, d.sent_at, d.finished_at, d.reason


@bp.get("/console/commands/<command_id>/events")
def events(command_id: str) -> Any:
    """text/event-stream: `delivery` (a row's HTML) for each row that changed, `summary` after them,
    `done` once every row is terminal."""
    rt = runtime()
    with rt.db.session() as s:
        cmd, paths = _scope_for(s, command_id)
        cid = cmd.id

    def stream() -> Iterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        seen: dict[int, tuple[Any, ...]] = {}
        started = last_sent = time.monotonic()
        while time.monotonic() - started < STREAM_MAX_S:
            with rt.db.session() as s:
                rows = rows_of(s, cid, paths)
            changed = [r for r in rows if seen.get(r["d"].id) != _fingerprint(r["d"])]
            for r in changed:
                seen[r["d"].id] = _fingerprint(r["d"])
                yield _event("delivery", {"id": r["d"].id, "state": r["d"].state,
                                          "html": flask.render_template("_delivery_row.html", r=r)})
            summary = summary_of(rows)
            if changed or not seen:
                yield _event("summary", {"html": flask.render_template("_summary.html", summary=summary),
                                         **{k: summary[k] for k in ("total", "ended", "finished")}})
                last_sent = time.monotonic()
            if summary["finished"]:
                yield _event("done", {"total": summary["total"]})
                return
            if time.monotonic() - last_sent > KEEPALIVE_S:  # proxies close a silent connection
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            time.sleep(POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: pass events on at once
    return flask.Response(flask.stream_with_context(stream()), mimetype="text/event-stream", headers=headers)


__all__ = ["bp", "rows_of", "summary_of"]
