"""`hub users`, `hub tokens`, `hub audit` and `hub mqtt`: accounts, their tokens, the audit
log and device credentials, from the hub's own host.

Generated passwords and tokens are printed once, on stdout, and stored only as hashes.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from redis.exceptions import RedisError

from hub.cli.common import Failure, checked_runtime, cli_actor
from hub.access.permissions import ADMINISTRATOR, ROLES
from hub.hookspecs import hookimpl


def _password_from_stdin(enabled: bool) -> str | None:
    if not enabled:
        return None
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):
        password = password[:-1]
    if not password:
        raise Failure("--password-stdin: nothing on standard input")
    from hub.text import SURROGATE_MESSAGE, find_surrogate

    if find_surrogate(password) is not None:  # undecodable bytes on stdin (surrogateescape)
        raise Failure(f"--password-stdin: {SURROGATE_MESSAGE}")
    return password


def _account_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from hub.access.accounts import AccountError
    from hub.fleet.areas import AreaError

    try:
        return fn(*args, **kwargs)
    except AccountError as exc:
        raise Failure(str(exc)) from None
    except AreaError as exc:
        raise Failure(str(exc)) from None


def _show_password(name: str, generated: str | None) -> None:
    if generated is not None:
        click.echo(f"password for {name} (shown once; only its hash is stored): {generated}")


# -- users ----------------------------------------------------------------------------------------
@click.group()
def users() -> None:
    """Accounts: roles and the areas each may touch."""


def _create(name: str, roles: list[str], areas: tuple[str, ...], password_stdin: bool, full_name: str,
            login: bool = True) -> None:
    from hub.access import accounts

    password = _password_from_stdin(password_stdin)
    rt = checked_runtime()
    with rt.db.session() as s:
        user, generated = _account_call(accounts.create_user, s, cli_actor(), name, roles, areas, password=password,
                                        login=login, full_name=full_name)
        click.echo(f"user {user.name} created: {', '.join(user.roles)}; areas {', '.join(user.area_codes)}")
    _show_password(name, generated)


@users.command("create-admin")
@click.argument("name")
@click.option("--area", "areas", multiple=True, required=True, help="Area code (its subtree), e.g. 80.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating.")
@click.option("--full-name", default="")
def create_admin(name: str, areas: tuple[str, ...], password_stdin: bool, full_name: str) -> None:
    """Create an administrator of AREA (the province's first one, say)."""
    _create(name, [ADMINISTRATOR], areas, password_stdin, full_name)


@users.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES))
@click.option("--area", "areas", multiple=True, required=True, help="Area code (its subtree); repeat for more.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating.")
@click.option("--no-login", is_flag=True, help="No password: an account that only holds API tokens.")
@click.option("--full-name", default="")
def add(name: str, roles: tuple[str, ...], areas: tuple[str, ...], password_stdin: bool, no_login: bool,
        full_name: str) -> None:
    """Create an account with ROLEs in AREAs."""
    if no_login and password_stdin:
        raise Failure("--no-login and --password-stdin contradict each other")
    _create(name, list(roles), areas, password_stdin, full_name, login=not no_login)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_users(as_json: bool) -> None:
    """List accounts."""
    from sqlalchemy import select

    from hub.access.accounts import user_dict
    from hub.store.models import User

    rt = checked_runtime()
    with rt.db.session() as s:
        for u in s.scalars(select(User).order_by(User.name)):
            d = user_dict(u)
            if as_json:
                click.echo(json.dumps(d, default=str, ensure_ascii=False))
            else:
                state = "disabled" if u.disabled else "" if d["login"] else "tokens only"
                click.echo(f"{u.name:<24} {','.join(u.roles):<28} {','.join(d['areas']):<20} {state}")


def _user(s: Any, name: str) -> Any:
    from hub.access.accounts import get_user

    user = get_user(s, name)
    if user is None:
        raise Failure(f"no user {name}")
    return user


@users.command("reset-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of generating.")
def reset_password(name: str, password_stdin: bool) -> None:
    """Give NAME a new password (and end its sessions)."""
    from hub.access import accounts

    password = _password_from_stdin(password_stdin)
    rt = checked_runtime()
    with rt.db.session() as s:
        generated = _account_call(accounts.set_password, s, cli_actor(), _user(s, name), password)
    click.echo(f"password of {name} changed; its sessions ended")
    _show_password(name, generated)


@users.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Disable NAME: no sign-in, sessions end, tokens stop working."""
    from hub.access import accounts

    rt = checked_runtime()
    with rt.db.session() as s:
        _account_call(accounts.update_user, s, cli_actor(), _user(s, name), disabled=True)
    click.echo(f"user {name} disabled")


@users.command("unlock")
@click.argument("name")
def unlock(name: str) -> None:
    """Lift the lock that too many failed sign-ins put on NAME."""
    from hub.access.login_throttle import LoginThrottle, lift_lockout

    rt = checked_runtime()
    try:
        with rt.db.session() as s:
            user = _user(s, name)
            before = lift_lockout(s, LoginThrottle(rt.redis, rt.settings), cli_actor(), name, user.area_codes)
    except RedisError as exc:
        raise Failure(f"Redis at {rt.settings.redis_url} does not answer: {exc}") from None
    click.echo(f"user {name} unlocked" if before["locked"] else
               f"user {name} was not locked ({before['failures']} failed sign-ins forgotten)")


@users.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Enable NAME again."""
    from hub.access import accounts

    rt = checked_runtime()
    with rt.db.session() as s:
        _account_call(accounts.update_user, s, cli_actor(), _user(s, name), disabled=False)
    click.echo(f"user {name} enabled")


# -- tokens ---------------------------------------------------------------------------------------
@click.group()
def tokens() -> None:
    """API tokens for machines (Authorization: Bearer …)."""


@tokens.command("create")
@click.argument("name")
@click.option("--token-name", required=True, help="What uses the token (ci, alerting…).")
@click.option("--area", "areas", multiple=True, help="Narrow the token to this area (inside the user's); repeat.")
@click.option("--read-only", is_flag=True, help="Only GET: no command, no change.")
def create_token(name: str, token_name: str, areas: tuple[str, ...], read_only: bool) -> None:
    """Create a token acting as user NAME; it is printed once."""
    from hub.access import accounts

    rt = checked_runtime()
    with rt.db.session() as s:
        token, raw = _account_call(accounts.create_token, s, cli_actor(), _user(s, name), token_name,
                                   areas=list(areas) or None, read_only=read_only)
        scope = ", ".join(token.areas) if token.areas else "the user's areas"
        click.echo(f"token {token.id} ({token.prefix}…) for {name}: {scope}{'; read-only' if read_only else ''}")
    click.echo(f"token (shown once; only its sha256 is stored): {raw}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke token ID: it stops working at once."""
    from hub.access import accounts
    from hub.store.models import ApiToken

    rt = checked_runtime()
    with rt.db.session() as s:
        token = s.get(ApiToken, token_id)
        if token is None:
            raise Failure(f"no token {token_id}")
        if token.revoked_at is not None:
            raise Failure(f"token {token_id} was already revoked at {token.revoked_at.isoformat()}")
        accounts.revoke_token(s, cli_actor(), token)
    click.echo(f"token {token_id} revoked")


@tokens.command("list")
@click.option("--user", "user_name", help="Only this user's tokens.")
def list_tokens(user_name: str | None) -> None:
    """List tokens (never the tokens themselves)."""
    from sqlalchemy import select

    from hub.store.models import ApiToken, User

    rt = checked_runtime()
    with rt.db.session() as s:
        stmt = select(ApiToken).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if user_name:
            stmt = stmt.where(User.name == user_name)
        for t in s.scalars(stmt):
            state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else \
                f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
            areas = ",".join(t.areas) if t.areas else "(user areas)"
            click.echo(f"{t.id:>5} {t.prefix}… {t.user.name:<20} {t.name:<20} {areas:<16} "
                       f"{'ro' if t.read_only else 'rw'} {state}")


# -- audit ----------------------------------------------------------------------------------------
@click.group("audit")
def audit_group() -> None:
    """The audit log: export it, verify its hash chain."""


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise Failure(f"{option} {value!r}: not an ISO-8601 date or time") from None
    if dt.tzinfo is None:
        raise Failure(f"{option} {value!r}: give a UTC offset (e.g. +07:00 or Z)")
    from hub.schemas.fields import EARLIEST, LATEST

    try:
        dt = dt.astimezone(timezone.utc)
    except OverflowError:
        dt = LATEST  # reported just below
    if not EARLIEST <= dt < LATEST:
        raise Failure(f"{option} {value!r}: must lie between {EARLIEST.date()} and {LATEST.date()} (UTC)")
    return dt


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.option("--since", help="From this instant (ISO-8601 with offset).")
@click.option("--until", help="Before this instant.")
@click.option("--action", help="Exact action, or a prefix ending in . or *")
@click.option("--actor")
def audit_export(fmt: str, out: Path | None, since: str | None, until: str | None, action: str | None,
                 actor: str | None) -> None:
    """Write the audit log, oldest first (JSON Lines keeps every field the hash covers)."""
    from hub.access import audit

    since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
    rt = checked_runtime(audit_key=False)  # reading needs no key
    with rt.db.session() as s:
        stmt = audit.query(s, None, actor=actor, action=action, since=since_dt, until=until_dt, newest_first=False)
        entries = s.scalars(stmt.execution_options(yield_per=1000))
        if out is None:
            n = audit.export(entries, sys.stdout, fmt)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = audit.export(entries, fh, fmt)
            click.echo(f"wrote {n} entries to {out}", err=True)


def _exported_head(path: Path) -> tuple[int, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Failure(f"--head {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise Failure(f"--head {path}: not JSON ({exc})") from None
    seq, digest = (doc.get("seq"), doc.get("hash")) if isinstance(doc, dict) else (None, None)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(digest, str) \
            or len(digest) != 64:
        raise Failure(f"--head {path}: not a head written by `hub audit head --export` (needs seq and hash)")
    return seq, digest


@audit_group.command("verify")
@click.option("--head", "head_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A head written earlier by `hub audit head --export`: the chain must still reach it.")
def audit_verify(head_file: Path | None) -> None:
    """Check the hash chain; exit 1 at the first broken link."""
    from hub.access import audit

    exported = _exported_head(head_file) if head_file is not None else None
    rt = checked_runtime(audit_key=False)  # a wrong key is verify's to report, with the rest
    with rt.db.session() as s:
        try:
            verdict = audit.verify(s, exported)
        except audit.AuditError as exc:
            raise Failure(str(exc)) from None
    if not verdict.ok:
        raise Failure(str(verdict))
    click.echo(str(verdict) + (f"; reaches the exported head (entry {exported[0]})" if exported else ""))


@audit_group.command("head")
@click.option("--export", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write it to this file (JSON), to keep somewhere the database's administrators cannot write.")
def audit_head(out: Path | None) -> None:
    """Show the chain's head (its last entry and hash); keep it elsewhere to detect a cut tail."""
    from hub.access import audit

    rt = checked_runtime(audit_key=False)
    with rt.db.session() as s:
        head = audit.current_head(s)
    if out is None:
        click.echo(f"{head['seq']} {head['hash']}")
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(head) + "\n", encoding="utf-8")
    except OSError as exc:
        raise Failure(f"--export {out}: {exc.strerror}") from None
    click.echo(f"head: entry {head['seq']}, {head['hash']} written to {out}")


# -- MQTT device credentials ----------------------------------------------------------------------
@click.group()
def mqtt() -> None:
    """Mosquitto credentials and ACLs for MQTT devices."""


@mqtt.command("credentials")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--vendor", default="mqtt_speaker", show_default=True, help="Vendor plugin whose devices get accounts.")
@click.option("--prefix", help="Topic prefix (default: the vendor's configured topic_prefix).")
@click.option("--hub-user", default="hub", show_default=True, help="Broker user of the hub's processes.")
@click.option("--rotate", is_flag=True, help="New passwords for everyone (default: keep those in OUT).")
@click.option("--hasher", type=click.Choice(["auto", "mosquitto_passwd", "builtin"]), default="auto",
              show_default=True)
def credentials(out_dir: Path, vendor: str, prefix: str | None, hub_user: str, rotate: bool, hasher: str) -> None:
    """Write OUT/passwd, OUT/acl and OUT/credentials.csv (passwords, mode 0600) for every device."""
    from hub.access import audit
    from hub.access.mqtt_credentials import CredentialsError, generate

    rt = checked_runtime()
    try:
        with rt.db.session() as s:
            accounts, used = generate(s, rt.settings, rt.plugins, out_dir, vendor=vendor, prefix=prefix,
                                      hub_user=hub_user, rotate=rotate, hasher=hasher)
            audit.record(s, cli_actor(), "mqtt.credentials", "vendor", vendor,
                         {"devices": len(accounts) - 1, "rotate": rotate, "out": str(out_dir.resolve())})
    except CredentialsError as exc:
        raise Failure(str(exc)) from None
    click.echo(f"{len(accounts) - 1} device accounts and hub user {hub_user} in {out_dir} (hashed with {used}):\n"
               f"  {out_dir / 'passwd'}  → password_file\n  {out_dir / 'acl'}  → acl_file\n"
               f"  {out_dir / 'credentials.csv'}  passwords in clear (mode 0600): provision the devices, set "
               f"HUB_MQTT_PASSWORD, then keep it offline\n"
               f"Devices connect to the TLS listener, where their client id is their user name "
               f"(use_username_as_clientid); the hub's processes to their own listener (deploy/mosquitto/production.conf)")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    for group in (users, tokens, audit_group, mqtt):
        register(group)
