"""Test helpers: a webhook receiver on loopback that verifies signatures with the documented
helper, can answer 500, be slow, go down and come back on the same port; an MQTT subscriber."""
from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from hub.events import DeliveryChanged, DeviceOffline, DeviceOnline, Event
from hub.ports import free_port
from hub.testing import scaled

from hub_output_events.signing import HEADER, SignatureError, verify

SECRET = "s3cret-for-tests-only-0123456789"


def device_events(n: int) -> list[Event]:
    """n events alternating offline/online/delivery, each naming its index."""
    at = datetime(2024, 12, 6, 4, 55, tzinfo=UTC)
    out: list[Event] = []
    for i in range(n):
        if i % 3 == 0:
            out.append(DeviceOffline(device_id=f"spk-{i:03d}", previous="online", reason="heartbeat", at=at))
        elif i % 3 == 1:
            out.append(DeviceOnline(device_id=f"spk-{i:03d}", previous="offline", reason=None, at=at))
        else:
            out.append(DeliveryChanged(delivery_id=i, command_id=f"cmd-{i}", device_id=f"spk-{i:03d}",
                                       state="acked", previous="sent", reason=None, at=at))
    return out


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """condition()'s first true value, within `timeout` seconds stretched for a busy machine."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Receiver:
    """An IOC's webhook endpoint on 127.0.0.1. `statuses` are answered first, one per request,
    then 200; `delay_s` holds each answer; `down()`/`up()` close and reopen the port."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.port = free_port()
        self.statuses: list[int] = []
        self.delay_s = 0.0
        self.requests: list[dict[str, Any]] = []  # every request, verified or not, with its arrival time
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []  # kept-alive ones, cut by down()
        self.httpd: ThreadingHTTPServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hub"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._connections.append(self.connection)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    verify(receiver.secret, self.headers.get(HEADER), body)
                    error = None
                except SignatureError as exc:
                    error = str(exc)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else (401 if error else 200)
                    receiver.requests.append({"at": time.monotonic(), "status": status, "signature_error": error,
                                              "headers": dict(self.headers), "body": body})
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                answer = b"ok" if status < 300 else f"status {status}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def delivered(self) -> list[dict[str, Any]]:
        """Bodies (parsed) of the requests answered 2xx with a valid signature, in arrival order."""
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests if r["status"] < 300 and not r["signature_error"]]

    def attempts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)


class Subscriber:
    """An MQTT client subscribed to `<prefix>/#`, recording (topic, payload, retain) in order."""

    def sequences(self) -> list[int]:
        return [payload["sequence"] for _, payload, _ in self.messages]


    def __init__(self, host: str, port: int, prefix: str, persistent: bool = False) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._subscribed = threading.Event()
        # persistent: the broker keeps the subscription and queues messages while it is away
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{free_port()}",
                                  clean_session=not persistent)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, json.loads(m.payload), bool(m.retain)))
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError(f"could not subscribe on {host}:{port}")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PrivateBroker:
    """A Mosquitto of this test alone on 127.0.0.1, persistent (sessions survive a restart), so a
    test can stop it and bring it back on the same port."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "mosquitto.conf").write_text("\n".join([
            f"user {pwd.getpwuid(os.geteuid()).pw_name}", f"listener {self.port} 127.0.0.1",
            "allow_anonymous true", "persistence true", f"persistence_location {self.dir}/",
            "max_queued_messages 0", f"log_dest file {self.dir / 'mosquitto.log'}"]) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateBroker:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self._open(), what=f"mosquitto on port {self.port}")
        return self

    def _open(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its sessions
            self.proc.wait(10)
            self.proc = None
            wait_for(lambda: not self._open(), what="mosquitto to stop")
