"""The web console (bảng điều khiển): server-rendered pages for commune, district and province staff,
in Vietnamese by default, served by the hub's app beside the API.

Each page group is one module with a blueprint made by common.console_blueprint, its permission
rules (the API's table, hub.access.permissions: {"view": {"GET": roles}}) and, for the menu,
common.add_nav entries. CONSOLE_PAGES names them in the order they are mounted; a page group of
another part of the hub (programmes, emergency, relay, contents, reports) is added to the list, and
its add_nav with the key of its placeholder makes the greyed menu entry a link.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

import flask
from flask import Request

from hub.access import permissions
from hub.access.actors import Actor
from hub.runtime import Runtime

log = logging.getLogger("hub.console")

CONSOLE_PAGES = ("hub.console.auth", "hub.console.tokens", "hub.console.dashboard", "hub.console.devices",
                 "hub.console.commands", "hub.console.progress", "hub.console.emergency",
                 "hub.console.contents", "hub.console.programmes", "hub.console.as_run",
                 "hub.console.relay", "hub.console.reports")


def mount(app: flask.Flask, runtime: Runtime, authenticate: Callable[[Request], Actor]) -> None:
    """Serve the console's pages on `app` (the API's), behind their door (common.door)."""
    from hub.console.common import PAGES_KEY, door
    from hub.console.i18n import init_babel

    init_babel(app, runtime.settings)
    pages = app.extensions.setdefault(PAGES_KEY, {})
    check = door(authenticate)
    for dotted in CONSOLE_PAGES:
        module = importlib.import_module(dotted)
        blueprint: flask.Blueprint = module.bp
        problem = permissions.declare(blueprint.name, module.RULES)
        if problem:
            log.error("console page group %s: %s", dotted, problem)
        app.register_blueprint(blueprint)
        pages[blueprint.name] = check


__all__ = ["CONSOLE_PAGES", "mount"]
