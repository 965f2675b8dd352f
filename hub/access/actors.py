"""The single authorization seam: who is acting, and which areas they may touch.

Every API request goes through `authenticate`, which yields an Actor; every read is filtered
by `Actor.area_paths` and every write checked with it, and hub.access.permissions says which roles may
call which endpoint. The API's default authenticator is the accounts one
(hub.access.authenticate: session cookie + CSRF token, or a bearer API token). `local_admin` — the
unrestricted local administrator — remains for the command line, the embedded demo's own
bulletin and tests that pass it explicitly.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from hub.fleet.areas import subtree_paths


class Forbidden(PermissionError):
    """The actor may not do this; the message says what lies outside their areas."""


class Unauthenticated(PermissionError):
    """No valid credentials came with the request (HTTP 401)."""


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[str] = frozenset({"administrator"})
    areas: frozenset[str] | None = None  # None: every area
    _paths: tuple[str, ...] | None = field(default=None, compare=False)
    read_only: bool = False  # a read-only API token: no unsafe method, whatever the roles
    user_id: int | None = None
    via: str = "local"  # how it authenticated: local, session, token:<id>, cli

    @property
    def unrestricted(self) -> bool:
        return self.areas is None

    def has_any(self, roles: Iterable[str]) -> bool:
        return not self.roles.isdisjoint(roles)

    def area_paths(self, session: Session) -> tuple[str, ...] | None:
        """Paths of the subtrees this actor may touch; None when unrestricted."""
        if self.areas is None:
            return None
        return tuple(subtree_paths(session, sorted(self.areas)).values())

    def may_touch(self, session: Session, path: str) -> bool:
        paths = self.area_paths(session)
        return paths is None or any(path.startswith(p) for p in paths)

    def check_paths(self, session: Session, paths: Iterable[tuple[str, str]]) -> None:
        """Raise Forbidden naming the first (label, path) outside the actor's areas."""
        allowed = self.area_paths(session)
        if allowed is None:
            return
        for label, path in paths:
            if not any(path.startswith(p) for p in allowed):
                raise Forbidden(f"{label} lies outside the areas of {self.name}"
                                f" ({', '.join(sorted(self.areas or ()))})")


LOCAL_ADMIN = Actor(name="local-admin")

Authenticator = Callable[[object], Actor]


def local_admin(_request: object) -> Actor:
    return LOCAL_ADMIN
