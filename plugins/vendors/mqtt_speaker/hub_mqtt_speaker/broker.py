"""A private Mosquitto on a free loopback port, owned by this process: for certification runs
(`conformance_setup` in plugin.py) and tests that must restart a broker, never the shared one.

It never binds anything but 127.0.0.1. It is stopped by `stop()`, and otherwise when the
process exits normally (atexit) or is killed (the broker gets SIGTERM when the thread that
started it dies: Linux's parent-death signal), so a failed run leaves no broker behind.
Imports nothing from `hub`: the password file is written by the caller's hasher.
"""
from __future__ import annotations

import atexit
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from hub.ports import free_port

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The private broker could not be started; the message says why."""




def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
        return True
    except OSError:
        return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: atexit and stop() still apply


class PrivateMosquitto:
    """`mosquitto -c <own conf>` on 127.0.0.1:`port`.

    users     {username: password-file line hash} (the hash from hub.access.mqtt_credentials or
              mosquitto_passwd); without users the broker is anonymous
    acl       ACL file text (applies to users; None: no ACL file)
    open_door with users: accept any username and password (no password file, anonymous
              allowed) — the fault `accepts_unauthenticated`, never a real configuration
    persistent keep sessions and queued messages across restart() (saved on SIGTERM)

    Queue limits are lifted as in deploy/mosquitto/dev.conf: the default of 1,000 queued QoS-1
    messages per client drops the rest silently, which would make tests lie.
    """

    def __init__(self, *, port: int | None = None, users: dict[str, str] | None = None, acl: str | None = None,
                 open_door: bool = False, persistent: bool = False) -> None:
        if shutil.which("mosquitto") is None:
            raise BrokerError("the mosquitto binary is not installed (apt-get install mosquitto)")
        self.port = port or free_port()
        self.users = dict(users or {})
        self.acl = acl
        self.open_door = open_door
        self.persistent = persistent
        self.dir = Path(tempfile.mkdtemp(prefix="hub-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._atexit: Callable[[], None] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.dir / "mosquitto.log"

    def config_text(self) -> str:
        # Started as root, Mosquitto switches to the user `mosquitto`, which cannot read this
        # private directory: stay whoever owns it (a no-op when not root).
        lines = [f"user {pwd.getpwuid(os.geteuid()).pw_name}",
                 f"listener {self.port} 127.0.0.1", "per_listener_settings false",
                 "max_queued_messages 0", "max_inflight_messages 0",
                 f"log_dest file {self.log_path}", "log_type error", "log_type warning", "log_type notice",
                 "connection_messages true"]
        if self.persistent:
            lines += ["persistence true", f"persistence_location {self.dir}/"]
        else:
            lines += ["persistence false"]
        if self.users and not self.open_door:
            lines += ["allow_anonymous false", f"password_file {self.dir / 'passwd'}"]
        else:
            # No password file: Mosquitto then takes any username with any password.
            lines += ["allow_anonymous true"]
        if self.acl is not None:
            lines += [f"acl_file {self.dir / 'acl'}"]
        return "\n".join(lines) + "\n"

    def _write(self) -> None:
        def private(name: str, text: str) -> None:
            path = self.dir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)

        private("passwd", "".join(f"{u}:{h}\n" for u, h in self.users.items()))
        if self.acl is not None:
            private("acl", self.acl)
        private("mosquitto.conf", self.config_text())

    def start(self, timeout: float = 10.0) -> PrivateMosquitto:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self
            self._write()
            main = threading.current_thread() is threading.main_thread()
            # The parent-death signal fires when the *thread* that forked exits: only safe from
            # the main thread (a worker thread may end long before the broker should).
            self._proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent if main else None)
            if self._atexit is None:
                self._atexit = self.stop
                atexit.register(self._atexit)
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                why = self._tail() or f"exit code {self._proc.poll()}"
                self.stop()
                raise BrokerError(f"mosquitto on 127.0.0.1:{self.port} did not start: {why}")
            time.sleep(0.05)
        return self

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def halt(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM: a persistent broker saves its sessions) but keep its files,
        so start() brings the same broker back on the same port."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        deadline = time.monotonic() + timeout
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, down_s: float = 0.0) -> None:
        self.halt()
        time.sleep(down_s)
        self.start()

    def reload(self, verify: Callable[[], bool], timeout: float = 10.0, *, acl: str | None = None,
               open_door: bool | None = None) -> None:
        """Rewrite the configuration and have the running broker reload it (SIGHUP: connected
        clients stay connected), then wait until `verify()` sees the change, since a reload
        gives no sign of having finished."""
        if acl is not None:
            self.acl = acl
        if open_door is not None:
            self.open_door = open_door
        self._write()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise BrokerError(f"mosquitto on 127.0.0.1:{self.port} is not running")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while not verify():
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto on 127.0.0.1:{self.port} did not apply its new configuration "
                                  f"within {timeout:g}s: {self._tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the broker for good and remove its files. Idempotent."""
        try:
            self.halt()
        finally:
            if self._atexit is not None:
                atexit.unregister(self._atexit)
                self._atexit = None
            shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PrivateMosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
