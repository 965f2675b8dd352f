"""Which roles may call which endpoint: the one table the API's authorization seam consults.

Areas are a separate, second check (every view filters reads and checks writes against the
actor's areas); this table only answers "may someone with these roles do this at all".
The table is assembled from the blueprints' registrations (hook register_blueprints, which the
hub's own resources use like any plugin): each blueprint brings the rules of its own views, so a
plugin's route needs no edit here. An endpoint or method missing from the table is refused (fail
closed), and a test asserts that every route of the app has its row here.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ADMINISTRATOR = "administrator"
EDITOR = "editor"        # writes contents
APPROVER = "approver"    # approves, rejects and publishes contents (hub.content.workflow)
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

PUBLIC = "public"  # a rule's value for a method served without credentials (the door in)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

# endpoint (blueprint.view) → method → roles allowed, from declare(). HEAD and OPTIONS follow GET.
PERMISSIONS: dict[str, dict[str, frozenset[str]]] = {}

# Served without credentials: the API's own description, and what a blueprint declares PUBLIC.
PUBLIC_BLUEPRINTS = frozenset({"api-docs", "hub_swagger_assets"})
PUBLIC_ENDPOINTS: dict[str, frozenset[str]] = {}


class RuleError(ValueError):
    """A blueprint's rules are missing or malformed: its routes are not served."""


def declare(blueprint: str, rules: Mapping[str, Mapping[str, Any]] | None) -> str | None:
    """Add the rules of one blueprint's views, {"View": {"GET": roles, "POST": PUBLIC}}, to the table.

    Raises RuleError when there are none or one names an unknown role or method (the caller then
    does not serve the blueprint). A blueprint only ever declares rules for its own endpoints.
    Declaring the same rules again (one more app in the process) changes nothing; declaring
    different ones keeps only what both allow and returns the problem to report, so a second
    declaration can narrow a rule but never widen it.
    """
    if blueprint in PUBLIC_BLUEPRINTS:
        raise RuleError(f"blueprint name {blueprint} is reserved for the API's own description")
    if not rules or not isinstance(rules, Mapping):
        raise RuleError(f"blueprint {blueprint} was registered without permission rules "
                        f"({{view: {{method: roles}}}}), so none of its routes is served")
    parsed: dict[str, tuple[dict[str, frozenset[str]], frozenset[str]]] = {}
    for view, methods in rules.items():
        if not isinstance(view, str) or not view or "." in view or not isinstance(methods, Mapping):
            raise RuleError(f"blueprint {blueprint}: rule {view!r} must map a view name of the blueprint "
                            f"to {{method: roles}}")
        roles_of: dict[str, frozenset[str]] = {}
        public: set[str] = set()
        for method, roles in methods.items():
            verb = str(method).upper()
            if verb not in HTTP_METHODS:
                raise RuleError(f"blueprint {blueprint}, view {view}: {method!r} is not one of "
                                f"{', '.join(sorted(HTTP_METHODS))}")
            if roles == PUBLIC:
                public.add(verb)
                continue
            if isinstance(roles, str) or not isinstance(roles, Iterable):
                raise RuleError(f"blueprint {blueprint}, view {view}, {verb}: give a set of roles "
                                f"(e.g. hub.access.permissions.ANYONE) or PUBLIC, not {roles!r}")
            allowed = frozenset(roles)
            unknown = sorted(str(r) for r in allowed - frozenset(ROLES))
            if unknown:
                raise RuleError(f"blueprint {blueprint}, view {view}, {verb}: unknown role "
                                f"{', '.join(unknown)} (roles: {', '.join(ROLES)})")
            roles_of[verb] = allowed
        parsed[f"{blueprint}.{view}"] = (roles_of, frozenset(public))
    problems = [p for endpoint, (roles_of, public) in parsed.items() if (p := _merge(endpoint, roles_of, public))]
    return "; ".join(problems) or None


def _merge(endpoint: str, roles_of: dict[str, frozenset[str]], public: frozenset[str]) -> str | None:
    old = PERMISSIONS.get(endpoint)
    old_public = PUBLIC_ENDPOINTS.get(endpoint, frozenset())
    if old is None:
        PERMISSIONS[endpoint] = roles_of
        if public:
            PUBLIC_ENDPOINTS[endpoint] = public
        return None
    if old == roles_of and old_public == public:
        return None
    PERMISSIONS[endpoint] = {m: r & roles_of[m] for m, r in old.items() if m in roles_of}
    if old_public & public:
        PUBLIC_ENDPOINTS[endpoint] = old_public & public
    else:
        PUBLIC_ENDPOINTS.pop(endpoint, None)
    return f"{endpoint} was declared again with other rules; only what both allow stands"


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
