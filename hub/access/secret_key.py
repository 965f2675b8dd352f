"""The installation's secrets: configured, or generated once per installation into files.

Never a constant in the repository (a key that ships with the code signs everyone's cookies),
and never in the database (someone who can write the database must not be able to forge the
audit chain). Two keys, kept apart because they are shared differently:

* the session key signs console cookies: HUB_SECRET_KEY / `secret_key`, else
  <state_dir>/secret_key; the same on every API host;
* the audit key keys the audit log's hash chain (hub.access.audit): HUB_AUDIT_KEY / `audit_key`, else
  <state_dir>/audit_key; the same on every host running a hub process (API, worker, ingest,
  scheduler, CLI), and backed up apart from the database — without it the chain cannot be
  verified, and with it whoever can write the database could rewrite the chain.

A generated key is written with mode 0600 by the first process; every later process — other
gunicorn workers included — reads the same file.
"""
from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from hub.config import ConfigError, Settings

log = logging.getLogger(__name__)

FILE_NAME = "secret_key"
AUDIT_FILE_NAME = "audit_key"


def session_secret(settings: Settings) -> str:
    if settings.secret_key:
        return str(settings.secret_key)
    return _from_file(Path(settings.state_dir) / FILE_NAME, "HUB_SECRET_KEY", "the session secret key")


def audit_key(settings: Settings) -> bytes:
    """The key of the audit chain's HMAC (generated into <state_dir>/audit_key when unset)."""
    if settings.audit_key:
        return str(settings.audit_key).encode("utf-8")
    return _from_file(Path(settings.state_dir) / AUDIT_FILE_NAME, "HUB_AUDIT_KEY", "the audit key").encode("ascii")


def audit_key_source(settings: Settings) -> str:
    """Where audit_key(settings) comes from, for messages."""
    return "HUB_AUDIT_KEY (audit_key)" if settings.audit_key else str(Path(settings.state_dir) / AUDIT_FILE_NAME)


def _from_file(path: Path, variable: str, what: str) -> str:
    if not path.exists():
        _create(path, variable)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o): chmod 600 it", path, mode)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigError(f"{path}: {what} is too short; delete the file to generate a new one")
    return key


def _create(path: Path, variable: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            # link, not rename: if another process got there first, its key wins and ours goes
            os.link(tmp, path)
            log.warning("no %s configured (%s): generated one into %s (mode 0600); "
                        "keep it, and the same on every host", path.name, variable, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def media_url_key(settings: Settings) -> bytes:
    """The key that signs media URLs (hub.media.sign), derived from the session key.

    Derived with HMAC under a fixed label rather than used as is: a media URL is handed to every
    device and may end up in logs, so what it carries must reveal nothing about the key that signs
    console cookies — and a signature made for one purpose can never pass for the other."""
    import hashlib
    import hmac

    return hmac.new(session_secret(settings).encode("utf-8"), b"hub media url signing v1", hashlib.sha256).digest()
