"""`hub contents`: create and list bulletins from the command line, so `hub send play --content`
has something to name without the API. Validated by the same ContentSchema as the API."""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import click
from marshmallow import ValidationError

from hub.capabilities import DEFAULT_PRIORITY, PRIORITIES
from hub.cli.common import Failure, checked_runtime, cli_actor, first_error
from hub.hookspecs import hookimpl
from hub.schemas.content import CONTENT_KINDS, ContentSchema


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
def add(title: str, kind: str, uri: str | None, duration_s: float | None, body: str | None, priority: str,
        language: str, category: str | None) -> None:
    """Create a content; prints its id for `hub send play --content ID`."""
    from hub.access.audit import record
    from hub.store.db import utcnow
    from hub.store.models import Content

    raw: dict[str, Any] = {"title": title, "kind": kind, "priority": priority, "language": language}
    if uri or duration_s is not None:
        raw["media"] = {k: v for k, v in (("uri", uri), ("duration_s", duration_s)) if v is not None}
    if body is not None:
        raw["body"] = body
    if category:
        raw["category"] = category
    try:
        data = ContentSchema().load(raw)
    except ValidationError as exc:
        raise Failure(first_error(exc.messages)) from None
    rt = checked_runtime()
    actor = cli_actor()
    with rt.db.session() as s:
        content = Content(id=uuid.uuid4().hex, created_by=actor.name, created_at=utcnow(), **data)
        s.add(content)
        record(s, actor, "content.create", "content", content.id, {"kind": content.kind, "title": content.title})
        cid = content.id
    click.echo(f"content {cid} created")


@contents.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_(as_json: bool) -> None:
    """Contents, newest first."""
    from sqlalchemy import select

    from hub.store.models import Content

    rt = checked_runtime()
    with rt.db.session() as s:
        for c in s.scalars(select(Content).order_by(Content.created_at.desc(), Content.id)):
            if as_json:
                click.echo(json.dumps({"id": c.id, "title": c.title, "kind": c.kind, "priority": c.priority,
                                       "media": c.media, "body": c.body}, ensure_ascii=False))
            else:
                click.echo(f"{c.id}  {c.kind:<10} {c.priority:<9} {c.title}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(contents)
