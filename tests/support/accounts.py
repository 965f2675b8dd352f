"""Accounts and API tokens made straight in the database, as the local administrator."""
from __future__ import annotations

from typing import Any

from hub.access import accounts
from hub.access.actors import LOCAL_ADMIN
from hub.runtime import Runtime


def make_user(rt: Runtime, name: str, roles: list[str], areas: list[str], password: str | None = None,
              login: bool = True) -> str | None:
    """Creates the account; returns its password (the one given, or the generated one)."""
    with rt.db.session() as s:
        _, generated = accounts.create_user(s, LOCAL_ADMIN, name, roles, areas, password=password, login=login)
    return password or generated


def make_token(rt: Runtime, name: str, **kwargs: Any) -> tuple[int, str]:
    """An API token of the account `name`: its id and the raw token."""
    with rt.db.session() as s:
        token, raw = accounts.create_token(s, LOCAL_ADMIN, accounts.get_user(s, name), "test", **kwargs)
        return token.id, raw
