"""Outputs: what the outputs file configures (metrics, event streams, open data…) and each output's
health as `hub outputs run` last recorded it. The file itself is edited on the hub's host."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma

from hub.access.permissions import ADMINISTRATORS
from hub.api.common import HubBlueprint, audit, fail, not_found, runtime
from hub.hookspecs import hookimpl

blp = HubBlueprint("outputs", __name__, url_prefix="/api/outputs",
                   description="Outputs (metrics for Prometheus, event streams to an operations centre, open "
                               "data…) configured in the outputs file, with each one's health: running, last "
                               "error, events handled, retried, failed and dropped. Administrators only.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest). The
# configuration names where the hub's figures go: administrators only, secrets never shown.
# Dead letters carry device events of every area, and a replay sends them out again: administrators.
RULES = {"list_outputs": {"GET": ADMINISTRATORS}, "show_output": {"GET": ADMINISTRATORS},
         "list_dead_letters": {"GET": ADMINISTRATORS}, "replay_dead_letters": {"POST": ADMINISTRATORS}}


class DeadLetterQuery(ma.Schema):
    destination = ma.fields.Str(validate=ma.validate.Length(min=1, max=63))  # one webhook's name


class ReplayBody(ma.Schema):
    """Which dead letters to send again: `ids` (their dead_id), or `all: true`."""

    ids = ma.fields.List(ma.fields.Str(validate=ma.validate.Length(min=1, max=64)),
                         validate=ma.validate.Length(min=1, max=10000))
    all = ma.fields.Bool(load_default=False)

    @ma.validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("all") and data.get("ids"):
            raise ma.ValidationError("give ids or all, not both", "ids")
        if not data.get("all") and not data.get("ids"):
            raise ma.ValidationError("the dead_ids to replay (or all: true)", "ids")


@blp.route("")
def list_outputs() -> dict[str, Any]:
    """List outputs

    Every configured output (its entry as written, secrets hidden) beside the status the outputs
    runner recorded: `runner` is null when no runner ever ran, `runner.alive` false when it stopped
    recording; `error` says what is wrong with the outputs file (the runner then keeps running its
    last good configuration, listed with `configured: false`).
    """
    from hub.reports.outputs import describe

    return describe(runtime())


@blp.route("/<string:name>")
@blp.fails(404)
def show_output(name: str) -> dict[str, Any]:
    """Show an output"""
    from hub.reports.outputs import describe

    found = describe(runtime())
    for row in found["outputs"]:
        if row["name"] == name:
            return {**row, "runner": found["runner"], "file_error": found["error"]}
    not_found("output", name)


def _dead_letter_call(fn: Callable[[], Any], name: str) -> Any:
    from hub.reports.output_dead_letters import KeepsNoDeadLetters, NoSuchOutput

    try:
        return fn()
    except NoSuchOutput as exc:
        if exc.file_error:
            fail(409, f"the outputs file cannot be read: {exc.file_error}")
        not_found("output", name)
    except KeepsNoDeadLetters as exc:
        fail(409, str(exc))


@blp.route("/<string:name>/dead-letters")
@blp.arguments(DeadLetterQuery, location="query", as_kwargs=True)
@blp.fails(404, 409)
def list_dead_letters(name: str, destination: str | None = None) -> dict[str, Any]:
    """List an output's dead letters

    Events the output could not deliver (a webhook that refused them, or did not answer through
    every retry), oldest first, read from the output's state directory: `dead_id`, `destination`,
    `dead_at`, `attempts`, `reason` (the last error), `replay_requested`, `envelope` (the event as
    it was sent). 409 when the output's plugin keeps no dead letters.
    """
    from hub.reports.output_dead_letters import dead_letters

    rows = _dead_letter_call(lambda: dead_letters(runtime(), name, destination), name)
    return {"output": name, "count": len(rows), "dead_letters": rows}


@blp.route("/<string:name>/dead-letters/replay", methods=["POST"])
@blp.arguments(ReplayBody)
@blp.fails(404, 409)
def replay_dead_letters(body: dict[str, Any], name: str) -> tuple[dict[str, Any], int]:
    """Replay dead letters

    Marks the dead letters (`ids`, or `all: true`) for the running `hub outputs run` to send again on
    its output's next periodic run (within its interval; at once when it starts), with their
    original id and sequence. `not_found`: ids that are not (or no longer) dead letters of it.
    """
    from hub.reports.output_dead_letters import request_replay

    rt = runtime()
    ids = None if body.get("all") else list(body["ids"])
    done = _dead_letter_call(lambda: request_replay(rt, name, ids), name)
    with rt.db.session() as s:
        audit(s, "output.dead_letters.replay", "output", name,
              {"ids": ids if ids is not None else "all", "replay_requested": done["replay_requested"],
               "not_found": done["not_found"]})
    return done, 202


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
