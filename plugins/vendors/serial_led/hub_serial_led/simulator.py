"""Simulated RS-485 lines: boards on one bus, served on a TCP socket (what a serial-over-TCP
converter offers; pyserial `socket://host:port`) or on a pseudo-terminal pair made by socat
(what a USB–RS-485 dongle looks like). Imports nothing from `hub`.

One thread per simulated bus runs a selector loop; frames are answered in arrival order, which
is what a half-duplex line does anyway.
"""
from __future__ import annotations

import atexit
import errno
import logging
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from hub_serial_led.address import parse_address
from hub_serial_led.board import FAULT_SWITCHES, SimBoard
from hub_serial_led.frame import Frame, FrameReader

log = logging.getLogger(__name__)

__all__ = ["FAULT_SWITCHES", "SerialBoardsSim", "SimBoard", "SimGroup", "SocatMissing", "main", "simulate_devices"]

_PTY_LINE = re.compile(r"PTY is (\S+)")
_LIVE: weakref.WeakSet[SerialBoardsSim] = weakref.WeakSet()


class SocatMissing(RuntimeError):
    """The pty transport needs socat, which is not installed."""


class _Bus:
    """The boards sharing one line: a frame goes to the board it addresses."""

    def __init__(self, boards: Iterable[SimBoard]) -> None:
        self.boards: dict[int, SimBoard] = {}
        for b in boards:
            if b.address in self.boards:
                raise ValueError(f"two simulated boards at address {b.address}")
            self.boards[b.address] = b
        self.lock = threading.Lock()
        self.bad_frames = 0  # frames from the hub that failed their checksum: boards ignore those
        self.frames = 0

    def answer(self, items: list[Frame | Exception]) -> list[bytes]:
        out = []
        with self.lock:
            for item in items:
                if not isinstance(item, Frame):
                    self.bad_frames += 1
                    continue
                self.frames += 1
                board = self.boards.get(item.address)
                if board is None:
                    continue  # nobody at that address: the line stays quiet
                reply = board.respond(item)
                if reply is not None:
                    out.append(reply)
        return out


class SerialBoardsSim:
    """Boards on one simulated bus. `transport="tcp"` (default) serves `socket://host:port`;
    `transport="pty"` runs socat and serves the pty pair's far end, `.pty` being the near end
    (at `link` when given, which must not exist yet)."""

    def __init__(self, boards: Iterable[SimBoard | int] = (1,), *, transport: str = "tcp", host: str = "127.0.0.1",
                 port: int = 0, link: str | None = None, reply_delay_s: float = 0.0, socat: str | None = None) -> None:
        if transport not in ("tcp", "pty"):
            raise ValueError(f"transport must be tcp or pty, not {transport!r}")
        if link is not None and (transport != "pty" or re.search(r"[,:!\s]", link)):
            raise ValueError(f"link {link!r}: only for the pty transport, and without , : ! or spaces (socat syntax)")
        self.transport = transport
        self.host, self._port_wanted, self.link = host, port, link
        self.reply_delay_s = reply_delay_s
        self._socat = socat
        self._bus = _Bus(b if isinstance(b, SimBoard) else SimBoard(int(b)) for b in boards)
        self._sel: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._server: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._socat_log: str | None = None
        self._fd: int | None = None
        self._url: str | None = None
        self.pty: str | None = None
        self.port: int | None = None
        self.connections = 0

    # -- what tests and the hub see ------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    def address(self, board: int) -> str:
        """The hub device address of `board` on this bus."""
        return f"{self.url}#{board}"

    @property
    def boards(self) -> dict[int, SimBoard]:
        return self._bus.boards

    def board(self, address: int) -> SimBoard:
        try:
            return self._bus.boards[address]
        except KeyError:
            raise KeyError(f"no simulated board at address {address}") from None

    def set_faults(self, address: int, **switches: Any) -> None:
        with self._bus.lock:
            self.board(address).set_faults(**switches)

    def cut_link(self, address: int) -> None:
        """Take the board off the bus (it hears and answers nothing) until restore_link()."""
        with self._bus.lock:
            self.board(address).link_cut = True

    def restore_link(self, address: int) -> None:
        with self._bus.lock:
            self.board(address).link_cut = False

    @property
    def bad_frames(self) -> int:
        return self._bus.bad_frames

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> SerialBoardsSim:
        if self._thread is not None:
            return self
        self._halt.clear()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        try:
            if self.transport == "tcp":
                self._start_tcp()
            else:
                self._start_pty(timeout)
        except BaseException:
            self._cleanup()
            raise
        self._thread = threading.Thread(target=self._loop, name=f"serial-led-sim {self._url}", daemon=True)
        self._thread.start()
        _LIVE.add(self)
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self._cleanup()
        _LIVE.discard(self)

    def __enter__(self) -> SerialBoardsSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- transports ------------------------------------------------------------------------------
    def _start_tcp(self) -> None:
        server = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        # The factory binds the port the device addresses name; a restart must not wait out TIME_WAIT.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((self.host, self._port_wanted))
        except OSError:
            server.close()
            raise
        server.listen(8)
        server.setblocking(False)
        self._server = server
        self.port = server.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"socket://{host}:{self.port}"
        assert self._sel is not None
        self._sel.register(server, selectors.EVENT_READ, ("accept", None))

    def _start_pty(self, timeout: float) -> None:
        exe = self._socat or shutil.which("socat")
        if not exe:
            raise SocatMissing("socat is not installed (apt-get install socat); the pty transport of the "
                               "serial_led simulator needs it")
        if self.link is not None and os.path.lexists(self.link):
            raise FileExistsError(f"{self.link} exists; the simulator will not replace it")
        fd, self._socat_log = tempfile.mkstemp(prefix="hub-serial-led-socat-", suffix=".log")
        near = "pty,raw,echo=0" + (f",link={self.link}" if self.link else "")
        with os.fdopen(fd, "wb") as log_file:
            self._proc = subprocess.Popen([exe, "-d", "-d", near, "pty,raw,echo=0"], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)
        deadline = time.monotonic() + timeout
        ptys: list[str] = []
        while len(ptys) < 2:
            text = self._socat_text()
            ptys = _PTY_LINE.findall(text)
            if len(ptys) >= 2:
                break
            if self._proc.poll() is not None:
                raise RuntimeError(f"socat exited with {self._proc.returncode}: {text.strip()[-500:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"socat did not report two ptys within {timeout:g} s: {text.strip()[-500:]}")
            time.sleep(0.02)
        near_path, far_path = ptys[0], ptys[1]
        if self.link is not None:
            deadline = time.monotonic() + timeout
            while not os.path.lexists(self.link):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"socat did not create {self.link}")
                time.sleep(0.02)
        self.pty = self.link or near_path
        self._url = self.pty
        self._fd = os.open(far_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        assert self._sel is not None
        self._sel.register(self._fd, selectors.EVENT_READ, ("pty", FrameReader()))

    def _socat_text(self) -> str:
        if self._socat_log is None:
            return ""
        try:
            with open(self._socat_log, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    # -- the loop ----------------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._sel is not None
        while not self._halt.is_set():
            for key, _mask in self._sel.select(0.5):
                kind, state = key.data
                try:
                    if kind == "wake":
                        self._wake_r.recv(64)  # type: ignore[union-attr]
                    elif kind == "accept":
                        self._accept()
                    elif kind == "conn":
                        self._serve_conn(key.fileobj, state)  # type: ignore[arg-type]
                    elif kind == "pty":
                        self._serve_pty(state)
                except Exception:  # noqa: BLE001 - one bad client must not take the bus down
                    log.exception("serial_led simulator %s: serving failed", self._url)

    def _accept(self) -> None:
        assert self._server is not None and self._sel is not None
        try:
            conn, _ = self._server.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(5.0)  # a write to a client that stopped reading must not wedge the bus
        self.connections += 1
        self._sel.register(conn, selectors.EVENT_READ, ("conn", FrameReader()))

    def _serve_conn(self, conn: socket.socket, reader: FrameReader) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._sel.unregister(conn)  # type: ignore[union-attr]
            conn.close()
            return
        for reply in self._answer(reader, data):
            try:
                conn.sendall(reply)
            except OSError:
                return

    def _serve_pty(self, reader: FrameReader) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EIO:  # no one holds the near end right now
                time.sleep(0.05)
                return
            raise
        for reply in self._answer(reader, data):
            _write_all(self._fd, reply)

    def _answer(self, reader: FrameReader, data: bytes) -> list[bytes]:
        replies = self._bus.answer(reader.feed(data))
        if replies and self.reply_delay_s > 0:
            time.sleep(self.reply_delay_s)
        return replies

    def _cleanup(self) -> None:
        if self._sel is not None:
            for key in list(self._sel.get_map().values()):
                if isinstance(key.fileobj, socket.socket) and key.fileobj not in (self._wake_r, self._wake_w):
                    try:
                        key.fileobj.close()
                    except OSError:
                        pass
            self._sel.close()
            self._sel = None
        for s in (self._server, self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._server = self._wake_r = self._wake_w = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.link is not None and os.path.islink(self.link) and self.pty == self.link:
            try:  # socat removes its link on a clean exit; this covers a kill
                os.unlink(self.link)
            except OSError:
                pass
        if self._socat_log is not None:
            try:
                os.unlink(self._socat_log)
            except OSError:
                pass
            self._socat_log = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + 5.0
    while view:
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError("pty not draining") from None
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_WRITE)
            sel.select(0.05)
            sel.close()


@atexit.register
def _stop_leftovers() -> None:
    # A crashed test or Ctrl-C must not leave socat processes behind.
    for sim in list(_LIVE):
        sim.stop()


# -- simulating the devices of a hub configuration ------------------------------------------------
class SimGroup:
    """Several simulated buses started and stopped together; boards found by device address."""

    def __init__(self, sims: dict[str, SerialBoardsSim]) -> None:
        self.sims = sims

    def start(self) -> SimGroup:
        started: list[SerialBoardsSim] = []
        try:
            for sim in self.sims.values():
                started.append(sim.start())
        except BaseException:
            for sim in started:
                sim.stop()
            raise
        return self

    def stop(self) -> None:
        for sim in self.sims.values():
            sim.stop()

    def __enter__(self) -> SimGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def board(self, address: str) -> SimBoard:
        addr = parse_address(address)
        return self.sims[addr.port].board(addr.board)

    def observe(self, address: str) -> dict[str, Any]:
        """What someone in front of the board sees, in the hub's terms (the certification
        suite's witness): activity, brightness, power, led_text; a board plays no audio."""
        b = self.board(address)
        return {"activity": b.activity, "source": None, "volume": None, "brightness": b.brightness,
                "power": b.power, "led_text": b.led_text}

    def cut_link(self, address: str) -> None:
        addr = parse_address(address)
        self.sims[addr.port].cut_link(addr.board)

    def restore_link(self, address: str) -> None:
        addr = parse_address(address)
        self.sims[addr.port].restore_link(addr.board)


def _unicode_flag(config: dict[str, Any]) -> bool:
    raw = config.get("unicode", True)
    if isinstance(raw, str):
        return raw.strip().lower() not in ("false", "0", "no", "off")
    return raw is not False


def simulate_devices(config: Mapping[str, Any], devices: Iterable[Any],
                     switches: Mapping[str, Mapping[str, Any]] | None = None) -> SimGroup:
    """Serve each device where its address points: `socket://HOST:PORT#N` → a TCP bus on
    HOST:PORT; `/some/path#N` → a socat pty linked at that path (which must not exist).
    `devices` are hub DeviceRefs (only .address and .config are read); `switches` sets fault
    switches by device address. Not started: call start()."""
    buses: dict[str, list[SimBoard]] = {}
    for d in devices:
        addr = parse_address(d.address)
        board = SimBoard(addr.board, unicode=_unicode_flag(d.config or {}))
        limit = (d.config or {}).get("led_text_max_bytes")  # the panel the registry describes
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            board.max_text_bytes = limit
        board.set_faults(**dict((switches or {}).get(d.address, {})))
        buses.setdefault(addr.port, []).append(board)
    sims: dict[str, SerialBoardsSim] = {}
    for url, boards in buses.items():
        if url.startswith("socket://"):
            m = re.fullmatch(r"socket://\[?([^\]]+?)\]?:(\d+)(?:[/?].*)?", url)
            if not m:
                raise ValueError(f"cannot simulate {url}: expected socket://HOST:PORT")
            sims[url] = SerialBoardsSim(boards, transport="tcp", host=m.group(1), port=int(m.group(2)))
        elif "://" in url:
            raise ValueError(f"cannot simulate {url}: only socket:// URLs and device paths are simulated")
        else:
            sims[url] = SerialBoardsSim(boards, transport="pty", link=url)
    return SimGroup(sims)


def main(argv: list[str] | None = None) -> int:
    """The `hub-serial-led-sim` command (options in simcli.py; this is its stable entry point)."""
    from hub_serial_led.simcli import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
