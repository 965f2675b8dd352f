"""A plugin written as a third party would: an API route with its own permission rules and a CLI
group, added through the hooks without touching hub/ (tests/test_plugin_routes.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask.views import MethodView

from hub.access.permissions import ADMINISTRATOR, OPERATOR
from hub.api.common import HubBlueprint, area_path, not_found, require, runtime
from hub.hookspecs import hookimpl

NOTICE_KEEPERS = frozenset({ADMINISTRATOR, OPERATOR})

blp = HubBlueprint("notices", __name__, url_prefix="/api/notices", description="Notices pinned to an area.")

# GET for those who keep notices; DELETE is served but has no rule, so nobody may call it.
RULES = {"AreaNotice": {"GET": NOTICE_KEEPERS}}


@blp.route("/<string:code>")
class AreaNotice(MethodView):
    def get(self, code: str) -> dict[str, Any]:
        with runtime().db.session() as s:
            path = area_path(s, code)
            if path is None:
                not_found("area", code)
            require(s, [(f"area {code}", path)], field="code")  # the caller's areas, as the hub's own views do
        return {"code": code, "notice": f"Thông báo của {code}"}

    def delete(self, code: str) -> dict[str, Any]:
        return {"deleted": code}


@click.group("notices")
def notices() -> None:
    """Notices pinned to an area (test plugin)."""


@notices.command("show")
@click.argument("code")
def show(code: str) -> None:
    """Print the notice of area CODE."""
    click.echo(f"notice of {code}: Thông báo của {code}")


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(notices)
