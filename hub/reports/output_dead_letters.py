"""Dead letters of the configured outputs, from any process: what an output could not deliver
(an event stream's webhook that would not take an event) and the replays an administrator asks for.

The API does not hold the running outputs (`hub outputs run` does): it builds the entry's output
anew, with the entry's state directory (`<state_dir>/outputs/<name>`, as the runner gives it), and
reads and marks the dead letters kept there; the runner's output replays the marked ones on its
next run_periodic. An output keeps dead letters when it has `dead_letters()` and
`request_replay(ids)` (hub-output-events' outputs do); building one opens nothing.
"""
from __future__ import annotations

from typing import Any

from hub.output import Output, OutputError
from hub.reports.output_config import OutputBook, entry_state_dir
from hub.runtime import Runtime


class NoSuchOutput(LookupError):
    """No output of this name in the outputs file (or the file cannot be read: `file_error`)."""

    def __init__(self, name: str, file_error: str | None) -> None:
        super().__init__(f"unknown output {name}" + (f" (the outputs file: {file_error})" if file_error else ""))
        self.file_error = file_error


class KeepsNoDeadLetters(ValueError):
    """The output's plugin keeps no dead letters (metrics, open data…), or cannot be built here."""


def keeper(rt: Runtime, name: str) -> Output:
    """The configured output `name`, built over its state directory, for its dead letters."""
    book = OutputBook(rt.settings.outputs_file, rt.plugins)
    book.refresh()
    cfg = book.outputs.get(name)
    if cfg is None:
        raise NoSuchOutput(name, book.error)
    try:
        output = cfg.instance(rt.plugins, entry_state_dir(rt.settings.state_dir, name))
    except OutputError as exc:
        raise KeepsNoDeadLetters(str(exc)) from None
    if not (callable(getattr(output, "dead_letters", None)) and callable(getattr(output, "request_replay", None))):
        raise KeepsNoDeadLetters(f"output {name} ({cfg.plugin}) keeps no dead letters")
    return output


def dead_letters(rt: Runtime, name: str, destination: str | None = None) -> list[dict[str, Any]]:
    """The output's dead letters, oldest first (each with `dead_id`, `destination`, `dead_at`,
    `attempts`, `reason`, `replay_requested`, `envelope`)."""
    return list(keeper(rt, name).dead_letters(destination))  # type: ignore[attr-defined]


def request_replay(rt: Runtime, name: str, ids: list[str] | None) -> dict[str, Any]:
    """Mark dead letters (these `ids`, or all when None) for the running output to replay; what
    was marked, and the ids that are not (or no longer) dead letters of this output."""
    output = keeper(rt, name)
    known = {r.get("dead_id") for r in output.dead_letters()}  # type: ignore[attr-defined]
    missing = sorted(set(ids) - known) if ids is not None else []
    chosen = None if ids is None else set(ids) & known
    marked = output.request_replay(chosen) if chosen is None or chosen else 0  # type: ignore[attr-defined]
    return {"output": name, "replay_requested": marked, "not_found": missing}
