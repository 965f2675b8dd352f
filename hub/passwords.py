"""Password hashing with the standard library's scrypt, and generated secrets.

A stored hash names its algorithm and parameters — `scrypt$n=16384,r=8,p=1$<salt>$<hash>` —
so the parameters can be raised later: old hashes still verify, and `needs_rehash` says when
to store a new one (at the next successful login).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt would hash a megabyte too; a login form has no business sending one


class PasswordError(ValueError):
    """A password that may not be used; the message says why."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # maxmem: scrypt needs 128·n·r bytes; leave room above OpenSSL's 32 MiB default for raised n.
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=256 * n * r + 1024 * 1024)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[dict[str, int], bytes, bytes] | None:
    try:
        algo, params, salt, digest = stored.split("$")
        if algo != "scrypt":
            return None
        values = {k: int(v) for k, v in (item.split("=", 1) for item in params.split(","))}
        if set(values) != {"n", "r", "p"}:
            return None
        return values, _unb64(salt), _unb64(digest)
    except (ValueError, TypeError):
        return None


def verify_password(password: str, stored: str | None) -> bool:
    """True when `password` matches `stored`; False for a wrong password or an unusable hash."""
    parsed = _parse(stored) if stored else None
    if parsed is None or len(password) > MAX_LENGTH:
        _burn(password)  # same cost either way, so timing does not tell which accounts exist
        return False
    params, salt, digest = parsed
    got = _scrypt(password, salt, params["n"], params["r"], params["p"], len(digest))
    return hmac.compare_digest(got, digest)


def _burn(password: str) -> None:
    _scrypt(password[:MAX_LENGTH], b"\0" * SALT_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)


def needs_rehash(stored: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return True
    params = parsed[0]
    return params["n"] < SCRYPT_N or params["r"] < SCRYPT_R or params["p"] < SCRYPT_P


def check_new_password(password: str, name: str) -> None:
    """Raise PasswordError for a password nobody should choose."""
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"must be at most {MAX_LENGTH} characters")
    if password.strip().casefold() == name.strip().casefold():
        raise PasswordError("must not be the account name")


def generate_password() -> str:
    """20 URL-safe characters (120 bits): typed once, then changed or kept in a password manager."""
    return secrets.token_urlsafe(15)
