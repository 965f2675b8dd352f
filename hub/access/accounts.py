"""Accounts: users with roles and areas, API tokens for machines, console login sessions.

The API and the command line both change accounts through here, so that every change is
validated and audited the same way whichever door it came in by. Secrets are shown once and
stored only as hashes: passwords with scrypt (hub.access.passwords), tokens and session ids with
sha256 (they are 256-bit random, so a slow hash would add nothing).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, false, func, not_, select, update
from sqlalchemy.orm import Session

from hub.access import audit
from hub.fleet.areas import under_any
from hub.access.actors import Actor
from hub.store.db import utcnow
from hub.store.models import ApiToken, Area, LoginSession, Meta, User, UserArea
from hub.access.passwords import PasswordError, check_new_password, generate_password, hash_password, needs_rehash, \
    verify_password
from hub.access.permissions import ADMINISTRATOR, ROLES

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
TOKEN_PREFIX = "hubt_"
TOKEN_ID_CHARS = 8  # after the prefix: enough to tell tokens apart in a list, nothing to guess from
LAST_USED_GRANULARITY = timedelta(seconds=60)  # a busy token does not write on every request


class AccountError(ValueError):
    """A request about accounts that cannot be done; `field` names the input at fault."""

    def __init__(self, field: str | None, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message, self.status = field, message, status


def sha256_hex(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


# -- validation -----------------------------------------------------------------------------------
def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise AccountError("name", "must be 2–64 lower-case letters, digits or . _ @ - (starting with a letter or "
                                   "digit)")
    return name


def check_roles(roles: Iterable[str]) -> list[str]:
    roles = list(dict.fromkeys(roles))
    if not roles:
        raise AccountError("roles", f"give at least one role ({', '.join(ROLES)})")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AccountError("roles", f"unknown role {unknown[0]} (roles: {', '.join(ROLES)})")
    return [r for r in ROLES if r in roles]


def area_paths(session: Session, codes: Iterable[str], field: str = "areas") -> dict[str, str]:
    """Code → path; AccountError naming the first unknown code."""
    codes = list(dict.fromkeys(codes))
    found = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(codes))).all()) if codes else {}
    for c in codes:
        if c not in found:
            raise AccountError(field, f"unknown area code {c} (import the areas first: hub import areas)")
    return found


def check_areas(session: Session, codes: Iterable[str], within: tuple[str, ...] | None,
                field: str = "areas", who: str = "you") -> list[str]:
    """The codes, known and (unless `within` is None) each inside one of the `within` subtrees."""
    found = area_paths(session, codes, field)
    if not found:
        raise AccountError(field, "give at least one area code: every account is limited to areas")
    if within is not None:
        for code, path in found.items():
            if not any(path.startswith(p) for p in within):
                raise AccountError(field, f"area {code} lies outside the areas of {who}", status=403)
    return sorted(found)


def _secret_ok(password: str | None, name: str, field: str = "password", *, user_inputs: Iterable[str] = (),
               current_hash: str | None = None) -> str:
    if not isinstance(password, str):
        raise AccountError(field, "must be a string")
    try:
        check_new_password(password, name, user_inputs=user_inputs, current_hash=current_hash)
    except PasswordError as exc:
        raise AccountError(field, str(exc)) from None
    return password


# -- users ----------------------------------------------------------------------------------------
def get_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def user_paths(session: Session, user: User) -> list[str]:
    return list(session.scalars(select(Area.path).join(UserArea, UserArea.area_code == Area.code)
                                .where(UserArea.user_id == user.id)))


def manageable(paths: tuple[str, ...] | None) -> Any:
    """SQL condition: a user all of whose areas lie in `paths` (None: every user)."""
    if paths is None:
        return None
    if not paths:
        return false()
    outside = exists(select(UserArea.user_id).join(Area, Area.code == UserArea.area_code)
                     .where(UserArea.user_id == User.id, not_(under_any(Area.path, paths))))
    anchored = exists(select(UserArea.user_id).where(UserArea.user_id == User.id))
    return and_(not_(outside), anchored)


def may_manage(session: Session, paths: tuple[str, ...] | None, user: User) -> bool:
    if paths is None:
        return True
    mine = user_paths(session, user)
    return bool(mine) and all(any(p.startswith(s) for s in paths) for p in mine)


def create_user(session: Session, by: Actor, name: str, roles: Iterable[str], areas: Iterable[str], *,
                password: str | None = None, login: bool = True, full_name: str = "") -> tuple[User, str | None]:
    """A new account; returns it and the generated password (None when one was given or
    `login` is False, for an account that only holds API tokens)."""
    check_name(name)
    roles = check_roles(roles)
    codes = check_areas(session, areas, by.area_paths(session), who=by.name)
    if get_user(session, name) is not None:
        raise AccountError("name", f"user {name} already exists", status=409)
    generated = None
    if login:
        if password is None:
            password = generated = generate_password()
        else:
            _secret_ok(password, name, user_inputs=(full_name,))
    now = utcnow()
    user = User(id=_new_user_id(session), name=name, full_name=full_name, roles=roles, disabled=False,
                created_at=now, created_by=by.name,
                password_hash=hash_password(password) if login else None, password_changed_at=now if login else None,
                areas=[UserArea(area_code=c) for c in codes])
    session.add(user)
    session.flush()
    audit.record(session, by, "user.create", "user", name,
                 {"id": user.id, "roles": roles, "areas": codes, "login": login}, areas=codes)
    return user, generated


USER_ID_HIGH_WATER = "users_id_high_water"  # meta row: the largest account id ever given


def _new_user_id(session: Session) -> int | None:
    """An account id never given before. Commands, idempotency keys and audit entries name
    their account by id, so a deleted account's id must not come back: SQLite (a rowid table
    without AUTOINCREMENT) hands out max(id) + 1 again after the newest account is deleted.
    PostgreSQL's sequence never goes back: None lets it choose."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    # write first: SQLite's write lock, so that two creations cannot read the same mark
    session.execute(update(Meta).where(Meta.key == USER_ID_HIGH_WATER).values(value=Meta.value))
    mark = session.get(Meta, USER_ID_HIGH_WATER, populate_existing=True)
    top = max(int(mark.value) if mark else 0, session.scalar(select(func.max(User.id))) or 0) + 1
    if mark is None:
        session.add(Meta(key=USER_ID_HIGH_WATER, value=str(top)))
    else:
        mark.value = str(top)
    return top


def update_user(session: Session, by: Actor, user: User, *, roles: Iterable[str] | None = None,
                areas: Iterable[str] | None = None, disabled: bool | None = None,
                full_name: str | None = None) -> User:
    changes: dict[str, Any] = {}
    before = user.area_codes
    if roles is not None:
        roles = check_roles(roles)
        if by.user_id == user.id and ADMINISTRATOR in user.roles and ADMINISTRATOR not in roles:
            raise AccountError("roles", "you cannot remove your own administrator role", status=409)
        if roles != list(user.roles):
            changes["roles"] = {"from": list(user.roles), "to": roles}
            user.roles = roles
    if areas is not None:
        codes = check_areas(session, areas, by.area_paths(session), who=by.name)
        if codes != before:
            changes["areas"] = {"from": before, "to": codes}
            for link in [a for a in user.areas if a.area_code not in codes]:
                user.areas.remove(link)
            user.areas.extend(UserArea(area_code=c) for c in codes if c not in before)
    if disabled is not None and disabled != user.disabled:
        if disabled and by.user_id == user.id:
            raise AccountError("disabled", "you cannot disable your own account", status=409)
        changes["disabled"] = disabled
        user.disabled = disabled
        if disabled:
            end_sessions(session, user.id)
    if full_name is not None and full_name != user.full_name:
        changes["full_name"] = full_name
        user.full_name = full_name
    session.flush()
    if changes:
        audit.record(session, by, "user.update", "user", user.name, changes,
                     areas=sorted(set(before) | set(user.area_codes)))
    return user


def delete_user(session: Session, by: Actor, user: User) -> None:
    if by.user_id == user.id:
        raise AccountError("name", "you cannot delete your own account", status=409)
    codes = user.area_codes
    name, uid = user.name, user.id
    session.delete(user)
    session.flush()
    audit.record(session, by, "user.delete", "user", name, {"id": uid, "areas": codes}, areas=codes)


def set_password(session: Session, by: Actor, user: User, password: str | None = None,
                 keep_sid: str | None = None, field: str = "password") -> str | None:
    """Set (or generate, when None) a new password and end the user's other sessions; returns
    the generated password. `field`: the input a refused password is named by."""
    generated = None
    if password is None:
        password = generated = generate_password()
    else:
        _secret_ok(password, user.name, field, user_inputs=(user.full_name,), current_hash=user.password_hash)
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    end_sessions(session, user.id, keep_sid=keep_sid)
    session.flush()
    audit.record(session, by, "user.password", "user", user.name,
                 {"generated": generated is not None, "self": by.user_id == user.id}, areas=user.area_codes)
    return generated


def user_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "full_name": user.full_name, "roles": list(user.roles),
            "areas": user.area_codes, "disabled": user.disabled, "login": user.password_hash is not None,
            "created_at": user.created_at, "created_by": user.created_by,
            "password_changed_at": user.password_changed_at, "last_login_at": user.last_login_at}


def actor_for(session: Session, user: User, via: str, token: ApiToken | None = None) -> Actor:
    """The Actor of a request by `user`, narrowed by the token it came with."""
    codes = set(user.area_codes)
    if token is not None and token.areas is not None:
        codes = narrow(session, codes, set(token.areas))
    return Actor(name=user.name, roles=frozenset(user.roles), areas=frozenset(codes),
                 read_only=bool(token and token.read_only), user_id=user.id, via=via)


def narrow(session: Session, user_codes: set[str], token_codes: set[str]) -> set[str]:
    """The part of the user's areas the token covers: token areas inside the user's, and user
    areas inside the token's. Recomputed on every request, so narrowing a user narrows their
    tokens too."""
    paths = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(user_codes | token_codes))).all())
    mine = [paths[c] for c in user_codes if c in paths]
    theirs = [paths[c] for c in token_codes if c in paths]
    out = {c for c in token_codes if c in paths and any(paths[c].startswith(p) for p in mine)}
    out |= {c for c in user_codes if c in paths and any(paths[c].startswith(p) for p in theirs)}
    return out


# -- login ----------------------------------------------------------------------------------------
def check_login(session: Session, name: str, password: str) -> tuple[User | None, str]:
    """(user, "ok") on success, else (user or None, reason). The reason is for the audit log
    only: the caller answers every failure the same way."""
    user = get_user(session, name) if isinstance(name, str) and NAME_RE.match(name) else None
    ok = verify_password(password, user.password_hash if user else None)
    if user is None:
        return None, "unknown user"
    if not ok:
        return user, "wrong password" if user.password_hash else "account has no password (token only)"
    if user.disabled:
        return user, "account disabled"
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    return user, "ok"


def open_session(session: Session, user: User, lifetime_s: int, remote_addr: str | None) -> str:
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(LoginSession(sid_hash=sha256_hex(sid), user_id=user.id, created_at=now, last_seen_at=now,
                             expires_at=now + timedelta(seconds=lifetime_s), remote_addr=(remote_addr or "")[:64]))
    user.last_login_at = now
    # Old rows of anyone go when a new session opens: cheap, and nothing else has to sweep them.
    session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    return sid


def find_session(session: Session, sid: str) -> LoginSession | None:
    row = session.scalars(select(LoginSession).where(LoginSession.sid_hash == sha256_hex(sid))).first()
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def end_sessions(session: Session, user_id: int, keep_sid: str | None = None) -> None:
    stmt = delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep_sid is not None:
        stmt = stmt.where(LoginSession.sid_hash != sha256_hex(keep_sid))
    session.execute(stmt)


def close_session(session: Session, sid: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.sid_hash == sha256_hex(sid)))


def csrf_token(secret_key: str, sid: str) -> str:
    """Bound to the session: a page of another site cannot read it, so it cannot send it."""
    return hmac.new(secret_key.encode(), b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()


# -- API tokens -----------------------------------------------------------------------------------
def create_token(session: Session, by: Actor, user: User, name: str, *, areas: Iterable[str] | None = None,
                 read_only: bool = False) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it and the token itself, which is shown this once."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
        raise AccountError("name", "a token needs a name of 1–100 characters (what uses it)")
    codes = None
    if areas is not None:
        codes = check_areas(session, areas, tuple(user_paths(session, user)), who=user.name)
        check_areas(session, codes, by.area_paths(session), who=by.name)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name.strip(), prefix=raw[:len(TOKEN_PREFIX) + TOKEN_ID_CHARS],
                     secret_hash=sha256_hex(raw), areas=codes, read_only=read_only, created_at=utcnow(),
                     created_by=by.name)
    session.add(token)
    session.flush()
    audit.record(session, by, "token.create", "token", str(token.id),
                 {"user": user.name, "name": token.name, "prefix": token.prefix, "areas": codes,
                  "read_only": read_only}, areas=codes or user.area_codes)
    return token, raw


def find_token(session: Session, raw: str) -> ApiToken | None:
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.secret_hash == sha256_hex(raw))).first()
    if token is None or token.revoked_at is not None:
        return None
    return token


def touch_token(token: ApiToken) -> None:
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        token.last_used_at = now


def revoke_token(session: Session, by: Actor, token: ApiToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    token.revoked_by = by.name
    session.flush()
    audit.record(session, by, "token.revoke", "token", str(token.id),
                 {"user": token.user.name, "name": token.name, "prefix": token.prefix},
                 areas=token.areas or token.user.area_codes)


def token_dict(token: ApiToken) -> dict[str, Any]:
    return {"id": token.id, "user": token.user.name, "name": token.name, "prefix": token.prefix,
            "areas": token.areas, "read_only": token.read_only, "created_at": token.created_at,
            "created_by": token.created_by, "last_used_at": token.last_used_at, "revoked_at": token.revoked_at,
            "revoked_by": token.revoked_by}
