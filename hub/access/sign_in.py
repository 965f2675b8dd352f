"""Signing in with a name and password, for every door that takes one (the API's POST /api/auth/login,
the console's sign-in form): throttled, audited, and answered the same way whatever went wrong.

Kept here rather than in a view so that the console and the API cannot drift apart on what a
failure costs (the throttle's counters, the audit entries) or on what a success opens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.access import accounts, audit
from hub.access.login_throttle import LoginThrottle, Throttled, ThrottleUnavailable
from hub.runtime import Runtime

LOGIN_FAILED = "wrong name or password"


class SignInRefused(Exception):
    """Signing in failed. `status`: 401 (wrong name or password: never says which), 429 (throttled;
    `retry_after` seconds, the password unchecked) or 503 (no Redis to count attempts with)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass
class SignedIn:
    sid: str  # the new session's id, for the cookie; the database keeps only its hash
    user: dict[str, Any]  # accounts.user_dict of the account


def admit(rt: Runtime, throttle: LoginThrottle, name: str, remote: str | None) -> Any:
    """The throttle's attempt, or SignInRefused 429 (before any password is hashed) or 503."""
    try:
        return throttle.admit(name, remote)
    except Throttled as exc:
        throttle.count("refused", name, remote)
        throttle.flush_summaries(rt.db.session)
        raise SignInRefused(429, exc.message, exc.retry_after) from None
    except ThrottleUnavailable as exc:
        raise SignInRefused(503, str(exc)) from None


def sign_in(rt: Runtime, name: str, password: str, remote: str | None) -> SignedIn:
    """Check the password and open a session, or raise SignInRefused. Successes are audited, and
    failures up to a number per period (beyond it counted in one summary entry per period)."""
    throttle = LoginThrottle(rt.redis, rt.settings)
    attempt = admit(rt, throttle, name, remote)
    throttle.flush_summaries(rt.db.session)
    with rt.db.session() as s:
        user, reason = accounts.check_login(s, name, password)
        if reason != "ok":
            areas = user.area_codes if user else ()
            locked = throttle.failed(attempt)
            if throttle.audit_this_failure():
                audit.record(s, "anonymous", "login.failure", "user", name,
                             {"reason": reason, "remote_addr": remote}, areas=areas, via="session")
            else:
                throttle.count("failures", name, remote)
            if locked and user is not None:  # a name that is no account: its failures are in the log already
                audit.record(s, "anonymous", "user.lockout", "user", name,
                             {"failures": rt.settings.login_max_failures, "lockout_s": rt.settings.login_lockout_s,
                              "remote_addr": remote}, areas=areas, via="session")
        else:
            throttle.succeeded(attempt)
    if reason != "ok":  # the failure was committed above, though signing in fails
        raise SignInRefused(401, LOGIN_FAILED)
    with rt.db.session() as s:
        user = accounts.get_user(s, name)
        sid = accounts.open_session(s, user, rt.settings.session_lifetime_s, remote)
        audit.record(s, user.name, "login.success", "user", user.name, {"remote_addr": remote},
                     areas=user.area_codes, via="session")
        return SignedIn(sid, accounts.user_dict(user))


__all__ = ["LOGIN_FAILED", "SignInRefused", "SignedIn", "admit", "sign_in"]
