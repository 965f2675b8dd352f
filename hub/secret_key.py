"""The key that signs session cookies: configured, or generated once per installation.

Never a constant in the repository: a key that ships with the code signs everyone's cookies.
When neither HUB_SECRET_KEY nor `secret_key` is set, the first process generates one into
<state_dir>/secret_key (mode 0600) and every later process — other gunicorn workers included —
reads the same file, so sessions survive restarts and work across workers.
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


def session_secret(settings: Settings) -> str:
    if settings.secret_key:
        return str(settings.secret_key)
    return _from_file(Path(settings.state_dir) / FILE_NAME)


def _from_file(path: Path) -> str:
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by others (mode %o): chmod 600 it", path, mode)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConfigError(f"{path}: the session secret key is too short; delete the file to generate a new one")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            # link, not rename: if another process got there first, its key wins and ours goes
            os.link(tmp, path)
            log.warning("no secret_key configured (HUB_SECRET_KEY): generated one into %s (mode 0600); "
                        "keep it, and the same on every API host", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
