"""What every `hub` subcommand shares: the one-line error and the process runtime."""
from __future__ import annotations

import getpass
from typing import Any

import click

from hub.access.actors import Actor
from hub.config import ConfigError
from hub.access.permissions import ADMINISTRATOR


class Failure(click.ClickException):
    """A one-line error for the operator."""

    def show(self, file: Any = None) -> None:
        click.echo(f"hub: error: {self.message}", err=True)


def runtime():  # noqa: ANN201
    from hub.runtime import get_runtime

    try:
        return get_runtime()
    except ConfigError as exc:
        raise Failure(str(exc)) from None


def checked_runtime(audit_key: bool = True):  # noqa: ANN201
    """The runtime, its database current and (unless `audit_key` is false) its audit key the
    chain's: a one-line error before any change rather than a traceback in the middle."""
    from hub.access.audit import AuditError, check_key
    from hub.store.db import SchemaError

    rt = runtime()
    try:
        rt.db.check()
        if audit_key:
            with rt.db.session() as s:
                check_key(s)
    except (SchemaError, AuditError) as exc:
        raise Failure(str(exc)) from None
    return rt


def cli_actor() -> Actor:
    """Whoever runs `hub` on the hub's host can read its configuration and database anyway: an
    unrestricted administrator, named after the OS account in the audit log."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "unknown"
    return Actor(name=f"cli:{who}"[:100], roles=frozenset({ADMINISTRATOR}), areas=None, via="cli")


def first_error(messages: Any, path: str = "") -> str:
    """The first of marshmallow's error messages as one line, `field.path: message`."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(messages, list) and messages:
        return first_error(messages[0], path)
    return f"{path}: {messages}"
