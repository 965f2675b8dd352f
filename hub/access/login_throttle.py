"""Login throttling, lockout, and failures counted instead of audited one by one.

The counters live in Redis, which every API process (several gunicorn workers, several hosts)
shares: a per-process count would let each worker grant its own allowance. Keys start with the
hub's queue name, so hubs sharing a Redis (and tests) do not mix.

* An account is locked after `login_max_failures` consecutive failed sign-ins, from whatever
  address, each within `login_window_s` of the previous one, for `login_lockout_s`; an
  administrator lifts it sooner (DELETE /api/users/NAME/lockout, `hub users unlock NAME`). The
  right password while locked does not sign in. Names that are no account are counted the same
  way, so a lockout does not tell which names exist.
* A client address is refused for the rest of a `login_window_s` window after
  `login_address_max_failures` failures in it (one guesser trying many names).
* A refused attempt answers 429 with Retry-After and never runs the password hash: hashing is
  what let unauthenticated floods slow down operators. Every attempt takes its place in the
  counters before hashing, so concurrent attempts cannot all slip under a limit.
* The first `login_audit_failures` failures of each `login_audit_period_s` period are audited
  one by one; the further ones, and the refused attempts, are counted and written as one
  `login.failure.summary` entry per period by the first sign-in attempt of a later period.

Redis restarted without persistence forgets the counters: attempts start again from zero.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from hub.access import audit
from hub.access.actors import Actor
from hub.config import Settings

SUMMARY_TTL_S = 7 * 86400  # a period nobody flushed is dropped after this
SUMMARY_MAX_KEYS = 50  # distinct accounts and addresses named in one summary; the rest as "(other)"


class Throttled(Exception):
    """This attempt is refused before any password is checked."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after, self.message = retry_after, message


class ThrottleUnavailable(RuntimeError):
    """Redis does not answer: sign-in is refused rather than left unthrottled."""


@dataclass
class Attempt:
    name: str
    address: str
    account_key: str
    address_key: str
    failures_before: int  # this account's consecutive failures counted before this attempt


def client_network(address: str) -> str:
    """What one client is counted by: its IPv4 address, or its IPv6 /64 (one subscriber's
    network, whose 2^64 addresses are all theirs to rotate through)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _ceil_s(ms: int) -> int:
    return max(1, math.ceil(ms / 1000)) if ms > 0 else 1


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.r = redis
        self.s = settings
        self.prefix = f"{settings.queue}:login"

    # -- keys -------------------------------------------------------------------------------------
    def _account(self, name: str) -> str:
        # hashed: a name is whatever a client sent
        return hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:32]

    def _keys(self, name: str) -> tuple[str, str]:
        h = self._account(name)
        return f"{self.prefix}:fail:{h}", f"{self.prefix}:lock:{h}"

    def _address_key(self, address: str) -> str:
        return f"{self.prefix}:addr:{client_network(address)}"

    # -- the attempt ------------------------------------------------------------------------------
    def admit(self, name: str, address: str | None) -> Attempt:
        """Take this attempt's place in the counters, or raise Throttled."""
        address = (address or "unknown")[:64]
        fail_key, lock_key = self._keys(name)
        addr_key = self._address_key(address)
        try:
            # One transaction: the lock is seen together with the counts, so an attempt cannot
            # pass between another's lock and the reset of the count it makes (see failed).
            pipe = self.r.pipeline()
            pipe.pttl(lock_key)
            pipe.set(addr_key, 0, ex=self.s.login_window_s, nx=True)
            pipe.incr(addr_key)
            pipe.pttl(addr_key)
            pipe.incr(fail_key)
            pipe.expire(fail_key, self.s.login_window_s)
            lock_ms, _, n_addr, addr_ms, n_account, _ = pipe.execute()
            if lock_ms > 0 or lock_ms == -1:
                self._release(fail_key, addr_key)
                raise Throttled(_ceil_s(lock_ms if lock_ms > 0 else self.s.login_lockout_s * 1000),
                                "too many failed sign-ins for this account: it is locked; try again later "
                                "or ask an administrator to lift the lock")
            if n_addr > self.s.login_address_max_failures:
                self._release(fail_key, addr_key)
                raise Throttled(_ceil_s(addr_ms), "too many failed sign-ins from this address; try again later")
            if n_account > self.s.login_max_failures:
                # others took the last places meanwhile; the lock follows from their failures
                self._release(fail_key, addr_key)
                raise Throttled(_ceil_s(max(self.r.pttl(lock_key), 1000)),
                                "too many failed sign-ins for this account: it is locked; try again later "
                                "or ask an administrator to lift the lock")
        except RedisError as exc:
            raise ThrottleUnavailable(f"sign-in is unavailable: Redis does not answer ({exc})") from None
        return Attempt(name, address, fail_key, addr_key, n_account - 1)

    def _decr(self, pipe: Any, key: str) -> None:
        # A key may have expired since it was counted: made again with its window, never
        # left without one (a count without expiry would never reset).
        pipe.set(key, 0, ex=self.s.login_window_s, nx=True)
        pipe.decr(key)

    def _release(self, fail_key: str, addr_key: str) -> None:
        pipe = self.r.pipeline()
        self._decr(pipe, addr_key)
        self._decr(pipe, fail_key)
        pipe.execute()

    def succeeded(self, attempt: Attempt) -> None:
        """A success starts the account's count again and does not count against its address."""
        try:
            pipe = self.r.pipeline()
            pipe.delete(attempt.account_key)
            self._decr(pipe, attempt.address_key)
            pipe.execute()
        except RedisError:
            pass  # the sign-in itself succeeded; a stale count only costs that account an attempt

    def failed(self, attempt: Attempt) -> bool:
        """Count the failure (it already took its place in admit); True when it locks the account."""
        n = attempt.failures_before + 1
        if n < self.s.login_max_failures:
            return False
        try:
            _, lock_key = self._keys(attempt.name)
            value = json.dumps({"name": attempt.name[:100], "since": time.time(), "failures": n})
            # The lock holds the count now; when it ends, the account starts again from zero.
            pipe = self.r.pipeline()
            pipe.set(lock_key, value, ex=self.s.login_lockout_s, nx=True)
            pipe.delete(attempt.account_key)
            locked, _ = pipe.execute()
            return bool(locked)
        except RedisError:
            return False

    # -- lockouts ---------------------------------------------------------------------------------
    def lockout(self, name: str) -> dict[str, Any]:
        """{"locked", "retry_after" (s, or None), "failures"} of an account."""
        fail_key, lock_key = self._keys(name)
        pipe = self.r.pipeline()
        pipe.pttl(lock_key)
        pipe.get(lock_key)
        pipe.get(fail_key)
        lock_ms, lock, failures = pipe.execute()
        locked = lock_ms > 0 or lock_ms == -1
        if locked and lock:
            failures = json.loads(lock).get("failures", failures)
        return {"locked": locked, "retry_after": _ceil_s(lock_ms) if lock_ms > 0 else None,
                "failures": max(0, int(failures or 0))}

    def unlock(self, name: str) -> dict[str, Any]:
        """Lift the lock and forget the failures; what there was before."""
        before = self.lockout(name)
        fail_key, lock_key = self._keys(name)
        self.r.delete(fail_key, lock_key)
        return before

    # -- audit ------------------------------------------------------------------------------------
    def _period(self, now: float | None = None) -> int:
        return int((time.time() if now is None else now) // self.s.login_audit_period_s)

    def audit_this_failure(self) -> bool:
        """True for the first `login_audit_failures` failures of the period (audit it); False
        beyond, the caller then counts it with `count`."""
        key = f"{self.prefix}:audited:{self._period()}"
        try:
            pipe = self.r.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.s.login_audit_period_s * 2)
            n, _ = pipe.execute()
        except RedisError:
            return True
        return n <= self.s.login_audit_failures

    def count(self, kind: str, name: str, address: str | None) -> None:
        """Count an attempt that is not audited on its own: kind "failures" or "refused"."""
        period = self._period()
        key = f"{self.prefix}:summary:{period}"
        try:
            pipe = self.r.pipeline()
            pipe.hincrby(key, kind, 1)
            pipe.hlen(f"{key}:accounts")
            pipe.hexists(f"{key}:accounts", name)
            pipe.hlen(f"{key}:addresses")
            pipe.hexists(f"{key}:addresses", address or "unknown")
            _, n_acc, has_acc, n_addr, has_addr = pipe.execute()
            pipe = self.r.pipeline()
            pipe.hincrby(f"{key}:accounts", name[:100] if has_acc or n_acc < SUMMARY_MAX_KEYS else "(other)", 1)
            pipe.hincrby(f"{key}:addresses",
                         (address or "unknown") if has_addr or n_addr < SUMMARY_MAX_KEYS else "(other)", 1)
            for k in (key, f"{key}:accounts", f"{key}:addresses"):
                pipe.expire(k, SUMMARY_TTL_S)
            pipe.zadd(f"{self.prefix}:summary:pending", {str(period): period})
            pipe.execute()
        except RedisError:
            pass

    def flush_summaries(self, session_factory: Callable[[], ContextManager[Session]],
                        now: float | None = None) -> int:
        """Write one `login.failure.summary` entry per finished period with counted attempts;
        returns how many. Each period is written once, by whichever process claims it; the
        database is opened only when there is one to write."""
        current = self._period(now)
        pending = f"{self.prefix}:summary:pending"
        try:
            periods = [int(p) for p in self.r.zrangebyscore(pending, "-inf", current - 1)]
            claimed = [p for p in periods if self.r.zrem(pending, str(p))]  # another process may claim first
            summaries = [self._take_summary(p) for p in claimed]
        except RedisError:
            return 0
        summaries = [s for s in summaries if s["failures"] or s["refused"]]
        if summaries:
            with session_factory() as session:
                for detail in summaries:
                    audit.record(session, "anonymous", "login.failure.summary", "login", None, detail, via="session")
        return len(summaries)

    def _take_summary(self, period: int) -> dict[str, Any]:
        key = f"{self.prefix}:summary:{period}"
        pipe = self.r.pipeline()
        pipe.hgetall(key)
        pipe.hgetall(f"{key}:accounts")
        pipe.hgetall(f"{key}:addresses")
        pipe.delete(key, f"{key}:accounts", f"{key}:addresses")
        counts, names, addresses, _ = pipe.execute()

        def decode(h: dict[bytes, bytes]) -> dict[str, int]:
            return {k.decode("utf-8", "replace"): int(v) for k, v in h.items()}

        counts = decode(counts)
        start = period * self.s.login_audit_period_s
        stamp = lambda at: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))  # noqa: E731
        return {"from": stamp(start), "until": stamp(start + self.s.login_audit_period_s),
                "failures": counts.get("failures", 0), "refused": counts.get("refused", 0),
                "accounts": decode(names), "addresses": decode(addresses)}


def lift_lockout(session: Session, throttle: LoginThrottle, by: Actor, name: str, areas: list[str]) -> dict[str, Any]:
    """An administrator lifts an account's lock (audited, even when there was none)."""
    before = throttle.unlock(name)
    audit.record(session, by, "user.unlock", "user", name,
                 {"was_locked": before["locked"], "failures": before["failures"]}, areas=areas)
    return before
