"""Password hashing with the standard library's scrypt, generated secrets, and the policy a
chosen password must meet.

A stored hash names its algorithm and parameters — `scrypt$n=16384,r=8,p=1$<salt>$<hash>` —
so the parameters can be raised later: old hashes still verify, and `needs_rehash` says when
to store a new one (at the next successful login).

The policy (check_new_password) refuses, each under a rule named in the error: too short or too
long, the account's name, one character repeated, a sequence or repeated pattern, a common
password or a small variation of one, anything else zxcvbn rates too easy to guess, and the
current password again. zxcvbn ships its lists (common passwords, words, names) in the package:
nothing is fetched at run time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable

SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt would hash a megabyte too; a login form has no business sending one
# zxcvbn's score, 0–4: 3 is "safely unguessable" (at least 10^8 guesses): a slow hash stolen
# with the database should hold that long. zxcvbn rates at most its first 72 characters (its own bound).
MIN_SCORE = 3
ZXCVBN_MAX = 72
# zxcvbn keeps the user inputs of a call in a module-level dictionary: one call at a time.
_ZXCVBN_LOCK = threading.Lock()


class PasswordError(ValueError):
    """A password that may not be used; `rule` names the rule it breaks, the message says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (rule: {rule})")
        self.rule = rule


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


def _unaccented(text: str) -> str:
    """"Trần Thị Bình" → "Tran Thi Binh": how a name is typed on a keyboard without accents."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def check_new_password(password: str, name: str, *, user_inputs: Iterable[str] = (),
                       current_hash: str | None = None) -> None:
    """Raise PasswordError for a password nobody should choose. `user_inputs`: words of the
    account (its full name…) that make a password easy to guess; `current_hash`: the password
    in use, which the new one must differ from."""
    if len(password) < MIN_LENGTH:
        raise PasswordError("min_length", f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError("max_length", f"must be at most {MAX_LENGTH} characters")
    if password.strip().casefold() == name.strip().casefold():
        raise PasswordError("account_name", "must not be the account name")
    if len(set(password)) == 1:
        raise PasswordError("repeated", "must not be one character repeated")
    words = []
    for text in (name, *user_inputs):  # "Nguyễn Văn An" → also its words, joined, and without accents
        if text:
            for form in {text, _unaccented(text)}:
                parts = re.findall(r"\w+", form)
                words += [form, *parts, "".join(parts)]
    # what is left once the account's own words are taken out: a few letters guess nothing
    rest = _unaccented(password).casefold()
    for word in sorted({w.casefold() for w in words if len(w) >= 3}, key=len, reverse=True):
        rest = rest.replace(_unaccented(word), "")
    if rest != _unaccented(password).casefold() and len(re.findall(r"[^\W\d_]", rest)) < 4:
        raise PasswordError("account_words", "must not be built on the account's name")
    from zxcvbn import zxcvbn  # here, not at import: its word lists cost every `hub` process's start

    with _ZXCVBN_LOCK:
        rating = zxcvbn(password[:ZXCVBN_MAX], user_inputs=words)
    if rating["score"] < MIN_SCORE:
        matches = rating["sequence"]
        patterns = {m["pattern"] for m in matches}
        warning = (rating["feedback"].get("warning") or "").rstrip(".")
        if any(m.get("dictionary_name") == "passwords" for m in matches):
            raise PasswordError("common", "must not be a commonly used password or a small variation of one")
        if any(m.get("dictionary_name") == "user_inputs" for m in matches):
            raise PasswordError("account_words", "must not be built on the account's name")
        if patterns <= {"repeat", "sequence"}:
            raise PasswordError("pattern", "must not be a sequence or a repeated pattern (like abcd…, 1234…, "
                                           "abcabc…)")
        raise PasswordError("guessable", "is too easy to guess" + (f": {warning}" if warning else "") +
                            "; a few unrelated words make a strong one")
    if current_hash and verify_password(password, current_hash):
        raise PasswordError("current", "must differ from the current password")


def generate_password() -> str:
    """20 URL-safe characters (120 bits): typed once, then changed or kept in a password manager."""
    return secrets.token_urlsafe(15)
