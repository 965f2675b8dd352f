"""Content sources: what the sources file configures, each source's health, a poll on demand, and
a try-out of a configuration before it is saved. The file itself is edited on the hub's host."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.access.permissions import ADMINISTRATORS, ANYONE
from hub.api.common import HubBlueprint, audit, fail, not_found, runtime
from hub.hookspecs import hookimpl

blp = HubBlueprint("sources", __name__, url_prefix="/api/sources",
                   description="Nguồn tin: RSS, CAP alerts, the national system, another hub, configured in the "
                               "sources file; their health (last success, last error, items fetched).")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"list_sources": {"GET": ANYONE}, "show_source": {"GET": ANYONE},
         "poll_source": {"POST": ADMINISTRATORS}, "test_source": {"POST": ADMINISTRATORS}}


@blp.route("")
def list_sources() -> dict[str, Any]:
    """List sources

    Every configured source with its health; `error` says what is wrong with the sources file
    (the poller then keeps running its last good configuration). Sources that have health but
    are no longer configured are listed with `configured: false`.
    """
    from hub.content.sources import describe

    return describe(runtime())


@blp.route("/<string:name>")
@blp.fails(404)
def show_source(name: str) -> dict[str, Any]:
    """Show a source"""
    from hub.content.sources import describe_one

    row = describe_one(runtime(), name)
    if row is None:
        not_found("source", name)
    return row


@blp.route("/<string:name>/poll", methods=["POST"])
@blp.fails(404, 409)
def poll_source(name: str) -> tuple[dict[str, Any], int]:
    """Poll a source now

    Enqueues a poll of the source (by `hub sources run`'s worker) unless one is queued or running.
    """
    from hub.content.polling import enqueue
    from hub.content.sources import configured

    rt = runtime()
    found, error = configured(rt)
    cfg = found.get(name)
    if cfg is None:
        if error:
            fail(409, f"the sources file cannot be read: {error}")
        not_found("source", name)
    enqueued = enqueue(rt, cfg)
    with rt.db.session() as s:
        audit(s, "source.poll", "source", name, {"enqueued": enqueued})
    return {"source": name, "enqueued": enqueued,
            "detail": "poll enqueued" if enqueued else "a poll of this source is already queued or running"}, 202


@blp.route("/test", methods=["POST"])
def test_source() -> dict[str, Any]:
    """Try a source configuration

    The body is one source entry as the sources file would hold it (name, plugin, url, …); it is
    checked and the plugin's test() tried, nothing saved. `ok` false with `detail` saying what is
    wrong; `sample` shows a few items it would take in.
    """
    import flask

    from hub.content.sources import check_dict, try_entry

    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        fail(422, "the body must be a JSON object: one source entry (name, plugin, url, …)")
    rt = runtime()
    check = try_entry(rt, body)
    with rt.db.session() as s:  # the hub reached out where the caller said: on the record (never the options)
        audit(s, "source.test", "source", str(body.get("name"))[:100],
              {"plugin": str(body.get("plugin"))[:100], "ok": check.ok})
    return check_dict(check)


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
