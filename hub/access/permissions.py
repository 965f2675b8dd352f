"""Which roles may call which endpoint: the one table the API's authorization seam consults.

Areas are a separate, second check (every view filters reads and checks writes against the
actor's areas); this table only answers "may someone with these roles do this at all".
An endpoint or method missing from the table is refused (fail closed), and a test asserts that
every route of the app has its row here.
"""
from __future__ import annotations

from collections.abc import Iterable

ADMINISTRATOR = "administrator"
EDITOR = "editor"        # writes contents
APPROVER = "approver"    # approves contents (the approval workflow comes later; the role exists now)
OPERATOR = "operator"    # sends commands, manages groups
VIEWER = "viewer"        # reads
ROLES = (ADMINISTRATOR, EDITOR, APPROVER, OPERATOR, VIEWER)

ANYONE = frozenset(ROLES)                       # any signed-in account (reads are still area-filtered)
ADMINISTRATORS = frozenset({ADMINISTRATOR})
CONTENT_WRITERS = frozenset({ADMINISTRATOR, EDITOR})
COMMAND_SENDERS = frozenset({ADMINISTRATOR, OPERATOR})
GROUP_MANAGERS = frozenset({ADMINISTRATOR, OPERATOR})
AUDIT_READERS = frozenset({ADMINISTRATOR, VIEWER})

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# endpoint (blueprint.view) → method → roles allowed. HEAD and OPTIONS follow GET.
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {
    "areas.Areas": {"GET": ANYONE, "POST": ADMINISTRATORS},
    "areas.AreaByCode": {"GET": ANYONE},
    "devices.Devices": {"GET": ANYONE, "POST": ADMINISTRATORS},
    "devices.DeviceById": {"GET": ANYONE, "PUT": ADMINISTRATORS, "PATCH": ADMINISTRATORS,
                           "DELETE": ADMINISTRATORS},
    "devices.DeviceStatusView": {"GET": ANYONE},
    "groups.Groups": {"GET": ANYONE, "POST": GROUP_MANAGERS},
    "groups.GroupById": {"GET": ANYONE, "PUT": GROUP_MANAGERS, "DELETE": GROUP_MANAGERS},
    "contents.Contents": {"GET": ANYONE, "POST": CONTENT_WRITERS},
    "contents.ContentById": {"GET": ANYONE},
    "commands.Commands": {"GET": ANYONE, "POST": COMMAND_SENDERS},
    "commands.CommandById": {"GET": ANYONE},
    "commands.CommandCancel": {"POST": COMMAND_SENDERS},
    "commands.Deliveries": {"GET": ANYONE},
    "plugins.list_plugins": {"GET": ANYONE},
    "plugins.capabilities": {"GET": ANYONE},
    "health.health": {"GET": ANYONE},
    "auth.Me": {"GET": ANYONE},
    "auth.Logout": {"POST": ANYONE},
    "auth.Password": {"POST": ANYONE},
    "users.Users": {"GET": ADMINISTRATORS, "POST": ADMINISTRATORS},
    "users.UserByName": {"GET": ADMINISTRATORS, "PATCH": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
    "users.UserPassword": {"POST": ADMINISTRATORS},
    "users.UserLockout": {"GET": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
    "users.Tokens": {"GET": ADMINISTRATORS, "POST": ADMINISTRATORS},
    "users.TokenById": {"GET": ADMINISTRATORS, "DELETE": ADMINISTRATORS},
    "audit.AuditLog": {"GET": AUDIT_READERS},
    "audit.AuditVerify": {"GET": ADMINISTRATORS},
    "ingest.Quarantine": {"GET": ADMINISTRATORS},
}

# Served without credentials: the API's own description, and the door in.
PUBLIC_BLUEPRINTS = frozenset({"api-docs", "hub_swagger_assets"})
PUBLIC_ENDPOINTS = {"auth.Login": frozenset({"POST"})}


def is_public(endpoint: str | None, method: str) -> bool:
    if endpoint is None:
        return False
    if endpoint.split(".", 1)[0] in PUBLIC_BLUEPRINTS:
        return True
    return method in PUBLIC_ENDPOINTS.get(endpoint, frozenset())


def allowed_roles(endpoint: str, method: str) -> frozenset[str] | None:
    """Roles that may call `method` on `endpoint`; None when the table has no rule (refuse)."""
    rules = PERMISSIONS.get(endpoint)
    if rules is None:
        return None
    if method in ("HEAD", "OPTIONS"):
        method = "GET"
    return rules.get(method)


def may(roles: Iterable[str], endpoint: str, method: str) -> bool:
    allowed = allowed_roles(endpoint, method)
    return allowed is not None and not allowed.isdisjoint(roles)


def may_send_commands(roles: Iterable[str]) -> bool:
    """Also checked by hub.delivery.dispatch, so that no door in (API, CLI, a plugin) skips it."""
    return not COMMAND_SENDERS.isdisjoint(roles)


def describe(roles: Iterable[str]) -> str:
    return " or ".join(r for r in ROLES if r in set(roles)) or "nobody"
