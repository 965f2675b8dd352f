"""A real Icecast for live broadcasts and relays: Debian's `icecast2` run with a config of our own.

`IcecastServer` writes icecast.xml into a state directory of its own (loopback by default, a free
port, an admin password generated at start), starts `icecast2` — through `setpriv` as an
unprivileged user when we are root, because icecast2 refuses to run as root — waits until its admin
interface answers, and stops it. Each live session gets a mount with its own source credentials, so
one operator's password cannot take over another's mount; a mount may name a fallback mount with
`fallback-override`, so listeners move to the fallback when the live source stops (without being
disconnected) and come back when it returns. Mount listener and byte counts come from the admin
XML (/admin/stats).

Layer: broadcast. Imports nothing from the hub: the relay and dead-air logic build on it.
"""
from __future__ import annotations

import base64
import logging
import grp
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape
from hub.ports import free_port

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SHARE = Path("/usr/share/icecast2")  # Debian's web and admin XSL files


class IcecastError(RuntimeError):
    """icecast2 is missing, did not start, or answered something unexpected; the message says which."""


def icecast_binary() -> str | None:
    """Where Debian's icecast2 is, or None when it is not installed."""
    return shutil.which("icecast2") or ("/usr/sbin/icecast2" if os.access("/usr/sbin/icecast2", os.X_OK) else None)




def _normalise(mount: str) -> str:
    mount = "/" + mount.strip().lstrip("/")
    if len(mount) < 2 or any(c in mount for c in "<>&\"' ?#"):
        raise ValueError(f"not a usable mount name: {mount!r}")
    return mount


@dataclass(frozen=True)
class Mount:
    """One mount point: its source credentials and the mount its listeners fall back to."""

    name: str
    source_user: str
    source_password: str
    fallback: str | None = None

    def xml(self) -> str:
        fallback = ""
        if self.fallback:
            # override: when this mount's source comes back, listeners parked on the fallback return
            fallback = (f"<fallback-mount>{escape(self.fallback)}</fallback-mount>"
                        "<fallback-override>1</fallback-override>")
        return (f"<mount type=\"normal\"><mount-name>{escape(self.name)}</mount-name>"
                f"<username>{escape(self.source_user)}</username>"
                f"<password>{escape(self.source_password)}</password>{fallback}</mount>")


@dataclass(frozen=True)
class MountStats:
    """What Icecast says about a mount that has a source right now. Icecast refreshes the byte
    counters every few seconds; the listener count is current."""

    mount: str
    listeners: int
    bytes_read: int  # from the source
    bytes_sent: int  # to listeners


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account icecast2 runs as when we are root."""

    user: str = "nobody"
    group: str = "nogroup"

    def ids(self) -> tuple[int, int]:
        return pwd.getpwnam(self.user).pw_uid, grp.getgrnam(self.group).gr_gid


class IcecastServer:
    """One icecast2 process with its own config and state directory; a context manager.

    Mounts added while it runs are applied by rewriting the config and sending SIGHUP (icecast2
    reloads mounts and credentials on it without dropping sources or listeners).
    """

    def __init__(self, state_dir: Path | None = None, host: str = LOOPBACK, port: int | None = None,
                 max_sources: int = 32, burst_bytes: int = 16384, run_as: RunAs | None = None,
                 binary: str | None = None) -> None:
        self.binary = binary or None  # None: icecast_binary()
        self.host = host
        self.port = port or free_port(host)
        self.max_sources = max_sources
        # Icecast sends a new listener this much buffered audio at once: a device starts quickly,
        # but the listener (and a dead-air watcher) lags the source by that much audio.
        self.burst_bytes = burst_bytes
        self.run_as = run_as or RunAs()
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="hub-icecast-"))
        self.admin_user = "admin"
        self.admin_password = secrets.token_urlsafe(18)
        # the global source password is never handed out: every mount has credentials of its own
        self._global_source_password = secrets.token_urlsafe(18)
        self.mounts: dict[str, Mount] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # -- mounts ---------------------------------------------------------------------------------
    def add_mount(self, name: str, fallback: str | None = None, source_user: str = "source",
                  password: str | None = None) -> Mount:
        """A mount with fresh source credentials, or `password` when the caller keeps them (a live
        session's source resumes after a restart); replaces any earlier mount of that name."""
        mount = Mount(_normalise(name), source_user, password or secrets.token_urlsafe(18),
                      _normalise(fallback) if fallback else None)
        self.mounts[mount.name] = mount
        self._reload()
        return mount

    def remove_mount(self, name: str) -> None:
        """Forget a mount's credentials: a new source can no longer log in (one connected stays)."""
        self.mounts.pop(_normalise(name), None)
        self._reload()

    def source_url(self, mount: Mount) -> str:
        """What a source client (ffmpeg, a browser's recording sent through the hub) pushes to."""
        return f"icecast://{mount.source_user}:{mount.source_password}@{self.host}:{self.port}{mount.name}"

    def listen_url(self, mount: Mount | str) -> str:
        name = mount.name if isinstance(mount, Mount) else _normalise(mount)
        return f"http://{self.host}:{self.port}{name}"

    # -- config ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.state_dir / "icecast.xml"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    def config_xml(self) -> str:
        mounts = "".join(m.xml() for m in self.mounts.values())
        return f"""<icecast>
  <location>hub</location><admin>hub@localhost</admin>
  <limits>
    <clients>1000</clients><sources>{self.max_sources}</sources>
    <queue-size>524288</queue-size><client-timeout>30</client-timeout>
    <header-timeout>15</header-timeout><source-timeout>10</source-timeout>
    <burst-on-connect>1</burst-on-connect><burst-size>{self.burst_bytes}</burst-size>
  </limits>
  <authentication>
    <source-password>{escape(self._global_source_password)}</source-password>
    <admin-user>{escape(self.admin_user)}</admin-user>
    <admin-password>{escape(self.admin_password)}</admin-password>
  </authentication>
  <hostname>{escape(self.host)}</hostname>
  <listen-socket><port>{self.port}</port><bind-address>{escape(self.host)}</bind-address></listen-socket>
  {mounts}
  <fileserve>1</fileserve>
  <paths>
    <basedir>{escape(str(self.state_dir))}</basedir>
    <logdir>{escape(str(self.log_dir))}</logdir>
    <webroot>{SHARE / "web"}</webroot><adminroot>{SHARE / "admin"}</adminroot>
  </paths>
  <logging>
    <accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel>
  </logging>
  <security><chroot>0</chroot></security>
</icecast>
"""

    def _write_config(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.config_xml(), encoding="utf-8")
        os.chmod(tmp, 0o600)  # holds the passwords
        if os.geteuid() == 0:
            uid, gid = self.run_as.ids()
            for path in (self.state_dir, self.log_dir, tmp, *self.log_dir.iterdir()):
                os.chown(path, uid, gid)
        tmp.replace(self.config_path)

    def _reload(self, timeout: float = 5.0) -> None:
        """Apply the mounts to a running icecast2 and wait until it has re-read them."""
        if not self.running():
            return
        before = self._reloads_logged()
        self._write_config()
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)  # setpriv exec'd icecast2: same pid
        # icecast2 re-reads its config in a thread of its own up to a second later; a source that
        # logs in before that is refused (401), so wait for the reload to show in its log.
        deadline = time.monotonic() + timeout
        while self._reloads_logged() <= before:
            if time.monotonic() > deadline or not self.running():
                raise IcecastError(f"icecast2 did not reload its config: {self._log_tail()}")
            time.sleep(0.05)
        time.sleep(0.1)  # the line is logged just before the re-read itself

    def _reloads_logged(self) -> int:
        try:
            return (self.log_dir / "error.log").read_text(errors="replace").count("config reload request")
        except OSError:
            return 0

    # -- process --------------------------------------------------------------------------------
    def command(self) -> list[str]:
        binary = self.binary or icecast_binary()
        if binary is None:
            raise IcecastError("icecast2 is not installed (apt-get install icecast2; scripts/services.sh does it)")
        cmd = [binary, "-c", str(self.config_path)]
        if os.geteuid() == 0:
            cmd = ["setpriv", f"--reuid={self.run_as.user}", f"--regid={self.run_as.group}",
                   "--clear-groups", *cmd]
        return cmd

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> "IcecastServer":
        """Write the config, start icecast2 and wait until its admin interface answers."""
        self._write_config()
        cmd = self.command()
        out = (self.state_dir / "stdout.log").open("wb")
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise IcecastError(f"icecast2 exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                self.stats_xml(timeout=1.0)
                log.info("icecast2 answers on %s:%s", self.host, self.port)
                return self
            except (OSError, IcecastError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise IcecastError(f"icecast2 did not answer within {timeout}s: {self._log_tail()}")
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """End icecast2 (SIGTERM, then SIGKILL) and remove the state directory if we made it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _log_tail(self) -> str:
        parts = []
        for path in (self.state_dir / "stdout.log", self.log_dir / "error.log"):
            try:
                parts.append(path.read_text(errors="replace")[-1500:])
            except OSError:
                pass
        return "\n".join(parts)

    def __enter__(self) -> "IcecastServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- stats ----------------------------------------------------------------------------------
    def stats_xml(self, timeout: float = 5.0) -> ElementTree.Element:
        """Icecast's /admin/stats document, fetched with the admin credentials."""
        req = urllib.request.Request(f"http://{self.host}:{self.port}/admin/stats")
        token = base64.b64encode(f"{self.admin_user}:{self.admin_password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                body = resp.read()
        except urllib.error.HTTPError as e:
            raise IcecastError(f"/admin/stats answered {e.code}") from e
        try:
            return ElementTree.fromstring(body)
        except ElementTree.ParseError as e:
            raise IcecastError(f"/admin/stats is not XML: {body[:200]!r}") from e

    def kill_source(self, mount: Mount | str) -> bool:
        """Disconnect the source of a mount (/admin/killsource); False when it had none."""
        name = mount.name if isinstance(mount, Mount) else _normalise(mount)
        req = urllib.request.Request(f"http://{self.host}:{self.port}/admin/killsource?mount={name}")
        token = base64.b64encode(f"{self.admin_user}:{self.admin_password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status == 200
        except urllib.error.HTTPError:
            return False

    def stats(self) -> dict[str, MountStats]:
        """Listener and byte counts of every mount that has a source now, by mount name."""
        out: dict[str, MountStats] = {}
        for source in self.stats_xml().iter("source"):
            name = source.get("mount", "")
            if source.find("stream_start") is None:
                continue  # a mount of the config (one with a fallback) is listed even while it has no source

            def number(tag: str) -> int:
                text = source.findtext(tag)
                return int(text) if text and text.strip().isdigit() else 0

            out[name] = MountStats(name, number("listeners"), number("total_bytes_read"),
                                   number("total_bytes_sent"))
        return out

    def mount_stats(self, mount: Mount | str) -> MountStats | None:
        """One mount's counts, or None while it has no source."""
        name = mount.name if isinstance(mount, Mount) else _normalise(mount)
        return self.stats().get(name)
