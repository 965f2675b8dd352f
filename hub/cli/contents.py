"""`hub contents`: create, edit, move through the editorial workflow and list bulletins from the
command line, so `hub send play --content` has something to name without the API. Validated by
the same ContentSchema as the API, and written through hub.content.editing like the API: the
same rules, the same audit entries; a refusal is one line naming the rule."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from marshmallow import ValidationError

from hub.capabilities import DEFAULT_PRIORITY, PRIORITIES
from hub.cli.common import Failure, checked_runtime, cli_actor, first_error
from hub.hookspecs import hookimpl
from hub.schemas.content import CONTENT_KINDS, ContentSchema
from hub.store.content_tables import ContentStatus


@click.group("contents")
def contents() -> None:
    """Bulletins (bản tin) to play or show."""


@contents.command("add")
@click.option("--title", required=True)
@click.option("--kind", required=True, type=click.Choice(CONTENT_KINDS))
@click.option("--uri", help="Where devices fetch the media (audio_file, stream, led_image).")
@click.option("--duration", "duration_s", type=float, help="Length of the media in seconds.")
@click.option("--body", help="Text to speak (tts_text) or show (led_text).")
@click.option("--priority", type=click.Choice(PRIORITIES), default=DEFAULT_PRIORITY, show_default=True)
@click.option("--language", default="vi", show_default=True)
@click.option("--category")
@click.option("--area", "area_code", help="Area code the content belongs to (who may approve and publish it).")
@click.option("--publish", is_flag=True, help="Approve and publish at once (the administrator's emergency path); "
              "without it the content is a draft.")
def add(title: str, kind: str, uri: str | None, duration_s: float | None, body: str | None, priority: str,
        language: str, category: str | None, area_code: str | None, publish: bool) -> None:
    """Create a draft content; prints its id for `hub send play --content ID` once published."""
    from hub.content import editing

    raw: dict[str, Any] = {"title": title, "kind": kind, "priority": priority, "language": language}
    if uri or duration_s is not None:
        raw["media"] = {k: v for k, v in (("uri", uri), ("duration_s", duration_s)) if v is not None}
    if body is not None:
        raw["body"] = body
    if category:
        raw["category"] = category
    if area_code:
        raw["area_code"] = area_code
    data = _load(raw)
    rt = checked_runtime()
    actor = cli_actor()
    with rt.db.session() as s, _refusals():
        content = editing.create(s, actor, data)
        if publish:
            editing.transition(s, actor, content, "approve_and_publish")
        cid, status = content.id, content.status
    click.echo(f"content {cid} created ({status})")
    if status == "published":
        _speak(rt, cid)


def _load(raw: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    try:
        return ContentSchema(partial=partial).load(raw)
    except ValidationError as exc:
        raise Failure(first_error(exc.messages)) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """A workflow refusal as the one-line error, naming its rule."""
    from hub.content.workflow import WorkflowError

    try:
        yield
    except WorkflowError as exc:
        raise Failure(f"{exc} (rule {exc.rule})") from None


def _content(session: Any, content_id: str) -> Any:
    from hub.store.models import Content

    content = session.get(Content, content_id)
    if content is None:
        raise Failure(f"no content {content_id}")
    return content


def _action(action: str, content_id: str, reason: str | None) -> None:
    from hub.content import editing

    rt = checked_runtime()
    with rt.db.session() as s, _refusals():
        content = editing.transition(s, cli_actor(), _content(s, content_id), action, reason)
        status = content.status
    click.echo(f"content {content_id} {status}")
    if status == "published":
        _speak(rt, content_id)


def _speak(rt: Any, content_id: str, force: bool = False) -> None:
    """Say how a published text bulletin was spoken (nothing for other contents)."""
    from hub.content import publishing

    outcome = publishing.speak(rt, [content_id], force=force).get(content_id)
    if outcome in ("spoken", "cached"):
        with rt.db.session() as s:
            speech = _content(s, content_id).speech or {}
        tried = "".join(f"; {f['provider']} failed first: {f['error']}" for f in speech.get("fallback_from", []))
        cached = " from the cache" if outcome == "cached" else ""
        click.echo(f"spoken by {speech.get('provider')} (voice {speech.get('voice')}){cached}{tried}")
    elif outcome is not None:
        click.echo(f"warning: published, but not spoken: {outcome}", err=True)


@contents.command("submit")
@click.argument("content_id")
def submit(content_id: str) -> None:
    """Submit a draft for approval."""
    _action("submit", content_id, None)


@contents.command("approve")
@click.argument("content_id")
def approve(content_id: str) -> None:
    """Approve a submitted content."""
    _action("approve", content_id, None)


@contents.command("reject")
@click.argument("content_id")
@click.option("--reason", required=True, help="What the author should change.")
def reject(content_id: str, reason: str) -> None:
    """Send a submitted or approved content back to its author."""
    _action("reject", content_id, reason)


@contents.command("publish")
@click.argument("content_id")
@click.option("--approve", "approve_too", is_flag=True,
              help="Approve and publish in one step (administrators; for emergencies).")
def publish(content_id: str, approve_too: bool) -> None:
    """Publish an approved content: operators may then send it."""
    _action("approve_and_publish" if approve_too else "publish", content_id, None)


@contents.command("speak")
@click.argument("content_id")
@click.option("--force", is_flag=True, help="Synthesise again even if audio of this text is stored.")
def speak(content_id: str, force: bool) -> None:
    """Make (again) the audio of a published text bulletin."""
    rt = checked_runtime()
    with rt.db.session() as s:
        content = _content(s, content_id)
        if content.kind != "tts_text" or content.status not in (None, "published"):
            raise Failure(f"content {content_id} is not a published text bulletin "
                          f"(kind {content.kind}, status {content.status})")
    _speak(rt, content_id, force)


@contents.command("archive")
@click.argument("content_id")
@click.option("--reason")
def archive(content_id: str, reason: str | None) -> None:
    """Archive a content: it can no longer be sent."""
    _action("archive", content_id, reason)


@contents.command("edit")
@click.argument("content_id")
@click.option("--title")
@click.option("--body")
@click.option("--uri", help="New media URI (replaces the media).")
@click.option("--priority", type=click.Choice(PRIORITIES))
@click.option("--category")
@click.option("--area", "area_code")
@click.option("--note", help="Why, kept with the version.")
@click.option("--version", "expected", type=int, help="Refuse if the content is no longer at this version.")
def edit(content_id: str, title: str | None, body: str | None, uri: str | None, priority: str | None,
         category: str | None, area_code: str | None, note: str | None, expected: int | None) -> None:
    """Edit a draft, submitted or rejected content (it becomes a draft again)."""
    from hub.content import editing

    raw = {k: v for k, v in (("title", title), ("body", body), ("priority", priority), ("category", category),
                             ("area_code", area_code)) if v is not None}
    if uri is not None:
        raw["media"] = {"uri": uri}
    if not raw:
        raise Failure("nothing to change: give --title, --body, --uri, --priority, --category or --area")
    changes = {k: v for k, v in _load(raw, partial=True).items() if k in raw}
    rt = checked_runtime()
    with rt.db.session() as s, _refusals():
        content = _content(s, content_id)
        diff = editing.edit(s, cli_actor(), content, changes, note=note, expected_version=expected)
        version, status = content.version, content.status
    click.echo(f"content {content_id} version {version} ({status}): "
               + (", ".join(sorted(diff)) + " changed" if diff else "nothing changed"))


@contents.command("versions")
@click.argument("content_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def versions(content_id: str, as_json: bool) -> None:
    """Every edit of a content: who, when, what changed."""
    from hub.content import editing

    rt = checked_runtime()
    with rt.db.session() as s:
        for v in editing.versions(s, _content(s, content_id)):
            if as_json:
                click.echo(json.dumps({"version": v.version, "changed_by": v.changed_by,
                                       "changed_at": v.changed_at.isoformat(), "changes": v.changes,
                                       "note": v.note}, ensure_ascii=False))
            else:
                click.echo(f"{v.version:>3}  {v.changed_at.isoformat(timespec='seconds')}  {v.changed_by:<20} "
                           f"{', '.join(sorted(v.changes))}" + (f"  ({v.note})" if v.note else ""))


@contents.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--status", type=click.Choice([st.value for st in ContentStatus]),
              help="Only contents in this status (published includes those made before the workflow).")
@click.option("--area", "area_code", help="Only contents of this area (not its subtree).")
def list_(as_json: bool, status: str | None, area_code: str | None) -> None:
    """Contents, newest first."""
    from sqlalchemy import or_, select

    from hub.store.models import Content

    stmt = select(Content).order_by(Content.created_at.desc(), Content.id)
    if status == ContentStatus.PUBLISHED:
        stmt = stmt.where(or_(Content.status == status, Content.status.is_(None)))
    elif status:
        stmt = stmt.where(Content.status == status)
    if area_code:
        stmt = stmt.where(Content.area_code == area_code)
    rt = checked_runtime()
    with rt.db.session() as s:
        for c in s.scalars(stmt):
            if as_json:
                click.echo(json.dumps({"id": c.id, "title": c.title, "kind": c.kind, "priority": c.priority,
                                       "media": c.media, "body": c.body, "area_code": c.area_code,
                                       "status": c.status or "published", "version": c.version or 1},
                                      ensure_ascii=False))
            else:
                click.echo(f"{c.id}  {c.kind:<10} {c.priority:<9} {c.status or 'published':<9} {c.title}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(contents)
