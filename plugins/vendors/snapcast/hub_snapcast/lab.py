"""Real snapserver and snapclient processes on loopback, for tests, demos and certification.

`SnapLab` writes a snapserver config into a temp dir of its own (pipe streams, JSON-RPC on TCP,
HTTP off, server.json kept in that dir), starts snapserver on free ports, starts snapclients
with `--hostID` and a null file player (no sound card needed), waits until Server.GetStatus
lists them, and ends every process it started. Imports nothing from `hub`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hub_snapcast.rpc import RpcConnection

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # the lab never listens anywhere else
RATE = 48000


class LabError(RuntimeError):
    """A lab process did not start or did not show up in time; the message has its log tail."""


def binary(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/bin/{name}",) if os.access(p, os.X_OK)), None)


def free_port() -> int:
    # The lab runs without the hub installed (a vendor's bench), so not hub.ports.free_port; its
    # servers are never restarted on the same port, so a port from the kernel's range is safe here.
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]



def _children(pid: int) -> list[int]:
    """Descendants of `pid` (process:// stream sources snapserver started), deepest last."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _end(proc: subprocess.Popen[bytes], timeout: float = 5.0, kill: bool = False) -> None:
    if proc.poll() is not None:
        return
    strays = _children(proc.pid)
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
    for pid in strays:  # only the ones this process started, by id
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class SnapLab:
    """`streams`: snapserver stream ids, each a pipe in the lab dir (the first is where new
    clients start). `extra_sources`: further `source = …` URIs verbatim (e.g. a process:// relay).
    Ports are free ones unless given."""

    def __init__(self, streams: Iterable[str] = ("default", "bulletin"), *, control_port: int | None = None,
                 stream_port: int | None = None, extra_sources: Iterable[str] = (), workdir: str | Path | None = None,
                 start_timeout: float = 20.0) -> None:
        self.streams = list(dict.fromkeys(streams))
        if not self.streams:
            raise ValueError("a lab needs at least one stream")
        self.extra_sources = list(extra_sources)
        self._fixed_ports = control_port is not None
        self.control_port = control_port or free_port()
        self.stream_port = stream_port or free_port()
        self._own_dir = workdir is None
        self.dir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hub-snapcast-lab-"))
        self.start_timeout = start_timeout
        self.server: subprocess.Popen[bytes] | None = None
        self.clients: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    # -- files -----------------------------------------------------------------------------

    def fifo(self, stream: str) -> Path:
        return self.dir / f"{stream}.fifo"

    @property
    def config_path(self) -> Path:
        return self.dir / "snapserver.conf"

    def _write_config(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        sources = [f"source = pipe://{self.fifo(s)}?name={s}&mode=create" for s in self.streams]
        sources += [f"source = {uri}" for uri in self.extra_sources]
        self.config_path.write_text("\n".join([
            "[server]", f"datadir = {self.dir / 'data'}", "threads = 2",
            "[http]", "enabled = false",
            "[tcp]", "enabled = true", f"bind_to_address = {HOST}", f"port = {self.control_port}",
            # pcm: no encoder work for the shared CPUs; these streams only carry test audio.
            "[stream]", f"bind_to_address = {HOST}", f"port = {self.stream_port}", "codec = pcm", *sources,
            "[logging]", "sink = stderr", "filter = *:info", "",
        ]), encoding="utf-8")

    def _log_tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join((self.dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- snapserver ------------------------------------------------------------------------

    def start(self) -> SnapLab:
        exe = binary("snapserver")
        if exe is None:
            raise LabError("snapserver is not installed (scripts/services.sh installs it)")
        for attempt in range(3):
            try:
                self.start_server(exe)
                return self
            except LabError:
                # A free port can be taken between choosing it and snapserver binding it.
                if self._fixed_ports or attempt == 2:
                    raise
                self.control_port, self.stream_port = free_port(), free_port()
        return self

    def start_server(self, exe: str | None = None) -> None:
        """Start (or restart) snapserver on the lab's ports and wait until it answers."""
        with self._lock:
            if self.server is not None and self.server.poll() is None:
                return
            self._write_config()
            log_file = open(self.dir / "snapserver.log", "ab")  # noqa: SIM115 - owned by the process
            try:
                self.server = subprocess.Popen([exe or binary("snapserver") or "snapserver", "-c",
                                                str(self.config_path)], stdin=subprocess.DEVNULL,
                                               stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                log_file.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise LabError(f"snapserver exited with {self.server.returncode}:\n{self._log_tail('snapserver')}")
            try:
                self.rpc("Server.GetRPCVersion", timeout=1.0)
                return
            except (OSError, TimeoutError):
                time.sleep(0.1)
        self.stop_server(kill=True)
        raise LabError(f"snapserver did not answer on {HOST}:{self.control_port} within "
                       f"{self.start_timeout:g}s:\n{self._log_tail('snapserver')}")

    def stop_server(self, kill: bool = False) -> None:
        """Terminate snapserver (SIGTERM, or SIGKILL with kill=True) and wait until it is gone."""
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            _end(server, kill=kill)

    @property
    def server_running(self) -> bool:
        return self.server is not None and self.server.poll() is None

    # -- snapclients -----------------------------------------------------------------------

    def add_clients(self, host_ids: Iterable[str], wait: bool = True, timeout: float | None = None) -> None:
        exe = binary("snapclient")
        if exe is None:
            raise LabError("snapclient is not installed (scripts/services.sh installs it)")
        ids = list(host_ids)
        for hid in ids:
            self.start_client(hid, exe)
        if wait:
            self.wait_clients(ids, connected=True, timeout=timeout or self.start_timeout)

    def start_client(self, host_id: str, exe: str | None = None) -> None:
        with self._lock:
            old = self.clients.get(host_id)
            if old is not None and old.poll() is None:
                return
            log_file = open(self.dir / f"client-{host_id}.log", "ab")  # noqa: SIM115
            try:
                self.clients[host_id] = subprocess.Popen(
                    [exe or binary("snapclient") or "snapclient", "-h", HOST, "-p", str(self.stream_port),
                     "--hostID", host_id, "--player", "file:filename=null", "--logsink", "stderr"],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
            finally:
                log_file.close()

    def kill_client(self, host_id: str) -> None:
        """SIGKILL: the client vanishes without a goodbye, like a speaker losing power."""
        with self._lock:
            proc = self.clients.pop(host_id, None)
        if proc is not None:
            _end(proc, kill=True)

    def wait_clients(self, host_ids: Iterable[str], connected: bool = True, timeout: float = 20.0) -> None:
        ids = set(host_ids)

        def there() -> bool:
            clients = self.clients_by_id()
            return all(i in clients and clients[i].get("connected") is connected for i in ids)

        if not self.wait(there, timeout):
            tails = "\n".join(f"--- {i}\n{self._log_tail(f'client-{i}', 5)}" for i in sorted(ids))
            raise LabError(f"snapclients {sorted(ids)} not {'connected' if connected else 'gone'} within "
                           f"{timeout:g}s\n--- snapserver\n{self._log_tail('snapserver', 8)}\n{tails}")

    # -- asking snapserver ------------------------------------------------------------------

    def rpc(self, method: str, params: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
        """One request on a connection of its own (the adapter under test keeps its own)."""
        conn = RpcConnection(HOST, self.control_port, timeout)
        conn.connect()
        try:
            return conn.call(method, params)
        finally:
            conn.close()

    def status(self) -> dict[str, Any]:
        return self.rpc("Server.GetStatus")["server"]

    def clients_by_id(self) -> dict[str, dict[str, Any]]:
        try:
            server = self.status()
        except (OSError, TimeoutError):
            return {}
        return {c["id"]: c for g in server["groups"] for c in g["clients"]}

    def group_of(self, host_id: str) -> dict[str, Any]:
        for g in self.status()["groups"]:
            if any(c["id"] == host_id for c in g["clients"]):
                return g
        raise KeyError(f"snapserver has no client {host_id}")

    def stream_status(self, stream_id: str) -> str | None:
        return next((s.get("status") for s in self.status()["streams"] if s["id"] == stream_id), None)

    @staticmethod
    def wait(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()

    # -- audio -----------------------------------------------------------------------------

    def feed(self, stream: str, seconds: float, level: int = 2000) -> threading.Thread:
        """Write `seconds` of a square wave into a pipe stream, in real time, from a thread
        (as a playout system feeding the bulletin channel would). Returns the thread."""
        path = self.fifo(stream)
        period = 48  # 1 kHz at 48 kHz
        one = (level.to_bytes(2, "little", signed=True) * 2) * (period // 2) + \
              ((-level).to_bytes(2, "little", signed=True) * 2) * (period // 2)
        chunk = one * (RATE // period // 10)  # 100 ms

        def run() -> None:
            # O_RDWR never blocks on a FIFO (Linux) and keeps a writer on it, so snapserver's
            # reader, which reopens the pipe every 100 ms while nobody writes, finds data at its
            # next look; non-blocking writes keep the thread bounded if snapserver never reads.
            try:
                fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
            except OSError as exc:
                log.warning("lab: cannot feed %s: %s", path, exc)
                return
            try:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    try:
                        os.write(fd, chunk)
                    except BlockingIOError:
                        pass  # the pipe is full: snapserver reads in real time, so wait for it
                    except OSError as exc:  # snapserver went away mid-feed
                        log.info("lab: feeding %s stopped: %s", path, exc)
                        return
                    time.sleep(0.1)
            finally:
                os.close(fd)

        t = threading.Thread(target=run, name=f"lab-feed-{stream}", daemon=True)
        t.start()
        return t

    # -- lifecycle -------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every process the lab started that is still running."""
        procs = list(self.clients.values()) + ([self.server] if self.server is not None else [])
        return [p.pid for p in procs if p.poll() is None]

    def stop(self) -> None:
        with self._lock:
            clients, self.clients = list(self.clients.values()), {}
        for proc in clients:
            _end(proc)
        self.stop_server()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SnapLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        return json.dumps({"control_port": self.control_port, "stream_port": self.stream_port,
                           "dir": str(self.dir), "clients": sorted(self.clients)})
