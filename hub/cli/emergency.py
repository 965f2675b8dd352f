"""`hub emergency`: fire (or preview) an emergency in one step from the hub's host."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
from marshmallow import ValidationError

from hub.cli.common import Failure, checked_runtime, cli_actor, first_error
from hub.hookspecs import hookimpl

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def expiry(raw: str, now: datetime | None = None) -> str:
    """'30m', '2h', '90s', '1d' from now, or an ISO 8601 instant with its offset → ISO text."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", raw)
    if found is None:
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise Failure(f"--expires {raw!r}: give a duration such as 30m, 2h, 90s, or an ISO 8601 time with its "
                          "UTC offset") from None
        return when.isoformat()
    try:
        return ((now or datetime.now(timezone.utc))
                + timedelta(seconds=float(found[1]) * UNITS[found[2]])).isoformat()
    except OverflowError:
        raise Failure(f"--expires {raw!r}: too far ahead") from None


def _line(answer: dict[str, Any], preview: bool) -> str:
    kinds = ", ".join(f"{k} {v['reaches']}/{v['targeted']}" for k, v in answer["by_kind"].items())
    head = (f"would reach {answer['summary']}" if preview else
            f"emergency {answer['emergency_id']} fired: {answer['summary']}; command {answer['command_id']}")
    return f"{head} ({kinds}); {len(answer['cannot_receive'])} cannot receive it"


@click.command()
@click.option("--text", help="Words to speak and show.")
@click.option("--content", "content_id", help="A published content to send instead of text.")
@click.option("--cap", "cap_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A CAP 1.2 alert file: its text, areas and expiry.")
@click.option("--title", help="Title of the bulletin (default: its first words).")
@click.option("--voice", help="A voice of the emergency speech provider.")
@click.option("--area", "areas", multiple=True, help="Area code (includes its subtree).")
@click.option("--group", "groups", multiple=True, help="Group id.")
@click.option("--device", "devices", multiple=True, help="Device id.")
@click.option("--expires", help="When it ends: 30m, 2h, 90s from now, or an ISO 8601 time with its offset.")
@click.option("--preview", is_flag=True, help="Only say how far it would reach; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
def emergency(text: str | None, content_id: str | None, cap_file: Path | None, title: str | None,
              voice: str | None, areas: tuple[str, ...], groups: tuple[str, ...], devices: tuple[str, ...],
              expires: str | None, preview: bool, as_json: bool) -> None:
    """Fire an emergency in one step: speak TEXT and send it to every speaker and board of the areas."""
    from hub.broadcast import emergency as em
    from hub.content.workflow import WorkflowError
    from hub.delivery.dispatch import DispatchError
    from hub.schemas.emergency import EmergencySchema

    raw: dict[str, Any] = {k: v for k, v in (("text", text), ("content_id", content_id), ("title", title),
                                             ("voice", voice)) if v is not None}
    if cap_file is not None:
        try:
            raw["cap"] = cap_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Failure(f"--cap {cap_file}: {exc}") from None
    target = {k: list(v) for k, v in (("areas", areas), ("groups", groups), ("devices", devices)) if v}
    if target:
        raw["target"] = target
    if expires:
        raw["expires_at"] = expiry(expires)
    try:
        data = EmergencySchema().load(raw)
    except ValidationError as exc:
        raise Failure(first_error(exc.messages).replace("expires_at", "--expires")) from None
    rt = checked_runtime()
    try:
        answer = em.preview(rt, cli_actor(), data) if preview else em.fire(rt, cli_actor(), data)[0]
    except DispatchError as exc:
        raise Failure(str(exc)) from None
    except WorkflowError as exc:
        raise Failure(str(exc)) from None
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False, default=str, sort_keys=True))
        return
    click.echo(_line(answer, preview))
    for c in answer["cannot_receive"]:
        click.echo(f"  {c['device_id']} ({c['kind']}, {c['vendor']}, {c['area_code']}): {c['state']}: {c['reason']}")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(emergency)
