"""Per-device MQTT credentials and topic ACLs for Mosquitto.

Each device of an MQTT vendor (the reference protocol: topics P/ADDR/{cmd,ack,status,online})
gets a user named after its address, which may only publish its own ack, status and online and
read its own cmd; the hub's user may publish every cmd and read every ack, status and online.
`write` produces, in one directory:

  passwd           Mosquitto password file (hashes only): password_file
  acl              Mosquitto ACL file: acl_file
  credentials.csv  every user's password in clear, mode 0600: what is flashed into each device
                   and put in the hub's configuration (HUB_MQTT_PASSWORD); keep it offline

Passwords are generated (128 bits) and kept on re-runs, so adding a device does not change the
others'; `rotate` generates them all anew. Nothing here is ever written into the repository.

Client ids are bound to these users on the devices' listener (production.conf:
`use_username_as_clientid`): a device's client id is its user name, its address, so one
device's password cannot connect as another device and disconnect it. The hub's processes
share the hub user and connect through their own listener, where each keeps the distinct id it
needs (hub/mqtt.py). An address that could be one of those ids is refused: on the devices'
listener it would disconnect that process.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.store.models import Device
from hub.plugins import Plugins

# Mosquitto 2's PBKDF2-SHA512 format, `$7$iterations$salt$hash`. Its default of 101 iterations
# is kept: the passwords are random 128-bit strings, which no iteration count makes easier to
# guess, while every device reconnecting after a broker restart pays the cost at once.
MOSQUITTO_ITERATIONS = 101
SALT_BYTES = 12
DEVICE_PUBLISHES = ("ack", "status", "online")
DEVICE_READS = ("cmd",)
CSV_NAME, PASSWD_NAME, ACL_NAME = "credentials.csv", "passwd", "acl"
CSV_FIELDS = ("role", "username", "password", "device_id", "topic_prefix")
# Stems of the hub's own client ids: the MQTT plugins' senders (`hub-<random>`, `hub-prof-…`)
# and the ingest's listeners (`…-listener-<host>-<n>`).
HUB_CLIENT_ID_STEMS = ("hub-",)
HUB_CLIENT_ID_PARTS = ("-listener-",)


class CredentialsError(ValueError):
    """Credentials cannot be generated; the message says what to fix."""


@dataclass(frozen=True)
class Account:
    role: str  # "hub" or "device"
    username: str
    password: str
    device_id: str = ""
    topic_prefix: str = ""


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _check_level(value: str, what: str) -> None:
    # one topic level, and one line of the ACL/password files
    if not value or any(c in value for c in "/+#:\n\r\x00") or value != value.strip():
        raise CredentialsError(f"{what} {value!r} cannot be an MQTT user and topic level "
                               f"(empty, spaces around it, or one of / + # : or a line break)")


def _check_prefix(prefix: str) -> None:
    if not prefix or prefix.startswith(("/", "$")) or prefix.endswith("/") or any(c in prefix for c in "+#\n\r\x00"):
        raise CredentialsError(f"topic prefix {prefix!r} must be non-empty, without wildcards, and neither start "
                               f"nor end with '/'")


def vendor_prefix(settings: Settings, plugins: Plugins, vendor: str, override: str | None) -> str:
    """The vendor's topic prefix: `override`, else its configuration (with the plugin's defaults)."""
    if override:
        _check_prefix(override)
        return override
    config = settings.plugin_config(vendor)
    try:
        schema = plugins.vendor(vendor).manifest.config_schema
    except Exception as exc:  # a plugin missing here: say so rather than guess its defaults
        raise CredentialsError(f"vendor plugin {vendor} is not installed: {exc}; give --prefix") from None
    if schema is not None:
        config = schema().load(config)
    prefix = config.get("topic_prefix")
    if not prefix:
        raise CredentialsError(f"vendor {vendor} has no topic_prefix in its configuration; give --prefix")
    _check_prefix(prefix)
    return prefix


def device_accounts(session: Session, vendor: str, prefix: str) -> list[tuple[str, str, str]]:
    """(device id, address, topic prefix) of every device of `vendor`; a device's own
    config.topic_prefix wins, as it does when the adapter sends to it."""
    out = []
    seen: dict[str, str] = {}
    for d in session.scalars(select(Device).where(Device.vendor == vendor).order_by(Device.id)):
        _check_level(d.address, f"device {d.id}: address")
        own = (d.config or {}).get("topic_prefix") or prefix
        _check_prefix(own)
        if d.address in seen:
            raise CredentialsError(f"devices {seen[d.address]} and {d.id} share the address {d.address}")
        seen[d.address] = d.id
        out.append((d.id, d.address, own))
    return out


def _previous(out_dir: Path) -> dict[str, str]:
    path = out_dir / CSV_NAME
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["username"]: row["password"] for row in csv.DictReader(fh) if row.get("password")}


def plan(devices: Iterable[tuple[str, str, str]], hub_user: str, hub_prefixes: Iterable[str],
         previous: dict[str, str], rotate: bool = False) -> list[Account]:
    _check_level(hub_user, "hub user")

    def password(user: str) -> str:
        return previous[user] if user in previous and not rotate else secrets.token_urlsafe(16)

    devices = list(devices)
    if any(address == hub_user for _, address, _ in devices):
        raise CredentialsError(f"a device's address is {hub_user!r}, the hub's user name: pick another --hub-user")
    for did, address, _ in devices:
        if address.startswith((*HUB_CLIENT_ID_STEMS, f"{hub_user}-")) or any(p in address for p in HUB_CLIENT_ID_PARTS):
            raise CredentialsError(f"device {did}: address {address!r} could be the client id of one of the hub's "
                                   f"processes (hub-…, {hub_user}-…, …-listener-…); a device's client id is its "
                                   f"address, so it could disconnect that process: give the device another address")
    prefixes = sorted(set(hub_prefixes) | {p for _, _, p in devices})
    accounts = [Account("hub", hub_user, password(hub_user), "", " ".join(prefixes))]
    accounts += [Account("device", address, password(address), did, p) for did, address, p in devices]
    return accounts


def acl_text(accounts: list[Account]) -> str:
    lines = ["# Generated by `hub mqtt credentials`: each device may publish only its own",
             "# P/ADDR/{ack,status,online} and read only its own P/ADDR/cmd. No pattern lines, so",
             "# nothing is granted to a user that is not listed here (anonymous is refused anyway).",
             "# Devices connect to the listener with use_username_as_clientid (their client id is",
             "# their user name); the hub's user to its own listener (production.conf).", ""]
    for a in accounts:
        lines.append(f"user {a.username}")
        if a.role == "hub":
            for prefix in a.topic_prefix.split():
                lines += [f"topic write {prefix}/+/cmd"]
                lines += [f"topic read {prefix}/+/{kind}" for kind in DEVICE_PUBLISHES]
        else:
            lines += [f"topic write {a.topic_prefix}/{a.username}/{kind}" for kind in DEVICE_PUBLISHES]
            lines += [f"topic read {a.topic_prefix}/{a.username}/{kind}" for kind in DEVICE_READS]
        lines.append("")
    return "\n".join(lines)


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write through a new file created with `mode`, then rename: never readable by others,
    not even for a moment, and never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def passwd_text(accounts: list[Account], hasher: str = "auto") -> tuple[str, str]:
    """The password file and which hasher made it: `mosquitto_passwd -U` when installed (the
    broker's own tool, one run for the whole file, no password on a command line), else the
    same $7$ format computed here."""
    tool = shutil.which("mosquitto_passwd") if hasher in ("auto", "mosquitto_passwd") else None
    if hasher == "mosquitto_passwd" and tool is None:
        raise CredentialsError("mosquitto_passwd is not installed (use --hasher builtin)")
    if tool is None:
        return "".join(f"{a.username}:{mosquitto_hash(a.password)}\n" for a in accounts), "builtin"
    with tempfile.TemporaryDirectory(prefix="hub-mqtt-") as tmp:
        path = Path(tmp) / "passwd"
        _write_private(path, "".join(f"{a.username}:{a.password}\n" for a in accounts))
        r = subprocess.run([tool, "-U", str(path)], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise CredentialsError(f"mosquitto_passwd -U failed: {(r.stderr or r.stdout).strip()[:300]}")
        return path.read_text(encoding="utf-8"), "mosquitto_passwd"


def write(out_dir: Path, accounts: list[Account], hasher: str = "auto") -> str:
    """Write passwd, acl and credentials.csv into `out_dir`; returns the hasher used."""
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd, used = passwd_text(accounts, hasher)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows([a.role, a.username, a.password, a.device_id, a.topic_prefix] for a in accounts)
    _write_private(out_dir / CSV_NAME, buf.getvalue())
    _write_private(out_dir / PASSWD_NAME, passwd)
    _write_private(out_dir / ACL_NAME, acl_text(accounts), mode=0o644)
    return used


def generate(session: Session, settings: Settings, plugins: Plugins, out_dir: Path, *, vendor: str,
             prefix: str | None = None, hub_user: str = "hub", rotate: bool = False,
             hasher: str = "auto") -> tuple[list[Account], str]:
    base = vendor_prefix(settings, plugins, vendor, prefix)
    devices = device_accounts(session, vendor, base)
    accounts = plan(devices, hub_user, [base], _previous(out_dir), rotate)
    return accounts, write(out_dir, accounts, hasher)
