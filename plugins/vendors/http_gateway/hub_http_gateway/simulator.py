"""A vendor gateway in a thread: a real HTTP server on loopback holding many simulated devices,
enforcing the API key, with switches for the faults the hub must survive.

No `hub` import: vendors and certification tools run it without the hub installed.
"""
from __future__ import annotations

import copy
import hmac
import logging
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub_http_gateway import __version__, protocol
from hub_http_gateway.device import FAULT_SWITCHES, SimDevice

log = logging.getLogger(__name__)

GATEWAY_FAULTS = ("fail_next_n", "delay_s", "accept_without_key", "status_garbage_next_n")
_ACTIVITY = {protocol.AudioOut.IDLE: "idle", protocol.AudioOut.PLAYING: "playing",
             protocol.AudioOut.RELAYING: "relaying"}
GARBAGE = b"<html><body>502 Bad Gateway (upstream php-fpm)</body></html>"


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    status: int
    authorized: bool
    packet_type: int | None = None
    devices: tuple[str, ...] = ()
    request_id: str | None = None
    command_id: str | None = None
    at: float = 0.0


class GatewaySim:
    """`GatewaySim(devices=["GW0001", ...], api_key="k").start()`, then `.url`; `.stop()`.

    Gateway-wide faults (attributes, changeable while running): `fail_next_n` (HTTP 500 for
    the next N batch requests), `delay_s` (batch answers wait that long), `accept_without_key`,
    `status_garbage_next_n` (the next N status polls get a non-JSON page). Per-device faults
    (`set_device`): `offline`, `wrong_volume`, `ack_without_acting`, `bad_status`.
    """

    def __init__(self, devices: Iterable[str | SimDevice] = (), api_key: str = "", host: str = "127.0.0.1",
                 port: int = 0, *, fail_next_n: int = 0, delay_s: float = 0.0, accept_without_key: bool = False,
                 status_garbage_next_n: int = 0, offline: Iterable[str] = (), wrong_volume: Iterable[str] = (),
                 ack_without_acting: Iterable[str] = (), bad_status: Iterable[str] = (),
                 max_devices: int = protocol.GATEWAY_MAX_DEVICES, path_prefix: str = "",
                 heartbeat_s: float = 5.0, certfile: str | None = None, keyfile: str | None = None) -> None:
        if not api_key:
            raise ValueError("the simulated gateway needs an api_key (it has no default credentials)")
        self.api_key = api_key
        self._lock = threading.Lock()
        self.host, self._port = host, port
        self.fail_next_n, self.delay_s, self.accept_without_key = fail_next_n, delay_s, accept_without_key
        self.status_garbage_next_n = status_garbage_next_n
        self.max_devices, self.heartbeat_s = max_devices, heartbeat_s
        self.path_prefix = path_prefix.rstrip("/")
        self.certfile, self.keyfile = certfile, keyfile
        self.requests: list[RequestRecord] = []
        self._devices: dict[str, SimDevice] = {}
        for d in devices:
            dev = d if isinstance(d, SimDevice) else SimDevice(str(d), heartbeat_s=heartbeat_s)
            if dev.id in self._devices:
                raise ValueError(f"device {dev.id} listed twice")
            self._devices[dev.id] = dev
        for name, ids in (("offline", offline), ("wrong_volume", wrong_volume),
                          ("ack_without_acting", ack_without_acting), ("bad_status", bad_status)):
            for dev_id in ids:
                self.set_device(dev_id, **{name: True})
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> GatewaySim:
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certfile, self.keyfile)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        server.sim = self  # type: ignore[attr-defined]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"gateway-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes delayed handlers, which then answer nothing
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> GatewaySim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path_prefix}"

    # -- inspection and faults --------------------------------------------------------------------

    def device(self, device_id: str) -> SimDevice:
        """A snapshot of one device's state (changing it changes nothing; use set_device)."""
        with self._lock:
            dev = self._devices[device_id]
            dev.tick()
            return copy.deepcopy(dev)

    def device_ids(self) -> list[str]:
        with self._lock:
            return list(self._devices)

    def set_device(self, device_id: str, **changes: Any) -> None:
        """Set state or fault switches of one device: online, volume, rssi, …, or `offline=True`."""
        if "offline" in changes:
            changes["online"] = not changes.pop("offline")
        allowed = {"online", "volume", "rssi", "network", "version", *FAULT_SWITCHES} - {"offline"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(f"unknown device settings: {', '.join(unknown)}")
        with self._lock:
            dev = self._devices[device_id]
            for key, value in changes.items():
                setattr(dev, key, value)
            dev.last_seen = time.time()  # a device reports a change at once

    def observe(self, address: str) -> dict[str, Any]:
        """What someone standing by the loudspeaker hears, in the hub's terms (the certification
        suite's witness): the device's real state, not what it reports — a `wrong_volume` device
        misreports its volume here too, and `ack_without_acting` shows that nothing changed."""
        with self._lock:
            dev = self._devices[address]
            dev.tick()
            activity = _ACTIVITY.get(int(dev.audio_out_state), "idle")
            volume = int((dev.volume - protocol.VOLUME_MIN) * 100 / (protocol.VOLUME_MAX - protocol.VOLUME_MIN) + 0.5)
            return {"activity": activity, "source": dev.source, "volume": volume, "power": None}

    def cut_link(self, address: str) -> None:
        """The device loses its link to the gateway (it reports offline) until restore_link()."""
        self.set_device(address, online=False)

    def restore_link(self, address: str) -> None:
        self.set_device(address, online=True)

    def add_device(self, device_id: str) -> None:
        with self._lock:
            self._devices.setdefault(device_id, SimDevice(device_id, heartbeat_s=self.heartbeat_s))

    def batch_requests(self) -> list[RequestRecord]:
        return [r for r in list(self.requests) if r.method == "POST" and r.path == protocol.BATCH_PATH]

    # -- request handling (called on the server's handler threads) ---------------------------------

    def _authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.api_key}".encode()
        return hmac.compare_digest((header or "").encode(), expected)

    def _take(self, name: str) -> bool:
        """Consume one count of a countdown fault."""
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def handle_batch(self, req: dict[str, Any]) -> dict[str, Any]:
        results = []
        with self._lock:
            for dev_id in req["devices"]:
                dev = self._devices.get(dev_id)
                if dev is None:
                    results.append(protocol.result(dev_id, req["command_id"], protocol.Code.UNKNOWN_DEVICE))
                    continue
                code, state = dev.handle(req["command_id"], req["packet_type"], req["data"], req.get("expires_at"),
                                         req.get("priority") or "normal")
                results.append(protocol.result(dev_id, req["command_id"], code, state=state))
        return {"request_id": req["request_id"], "results": results}

    def status_body(self) -> dict[str, Any]:
        with self._lock:
            return {"ts": round(time.time(), 3), "devices": [d.status() for d in self._devices.values()]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a delayed answer must not hold up stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that timed out and hung up are part of the simulation, not errors worth a traceback.
        log.debug("gateway sim: request from %s ended abnormally", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server_version = f"hub-http-gateway-sim/{__version__}"

    @property
    def sim(self) -> GatewaySim:
        return self.server.sim  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def _path(self) -> str:
        path = self.path.split("?", 1)[0]
        prefix = self.sim.path_prefix
        return path[len(prefix):] if prefix and path.startswith(prefix + "/") else path

    def _send(self, status: int, body: bytes, record: RequestRecord, content_type: str = "application/json") -> None:
        self.sim.requests.append(record)
        self.send_response(status)
        self.send_header("Content-Type", content_type + "; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="gateway"')
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: dict[str, Any], **record: Any) -> None:
        self._send(status, protocol.encode(obj), RequestRecord(self.command, self._path(), status, at=time.time(),
                                                               **record))

    def _check_key(self) -> bool | None:
        """True when authorized, False when let in by the accept_without_key fault, None when refused."""
        if self.sim._authorized(self.headers.get("Authorization")):
            return True
        if self.sim.accept_without_key:
            return False
        self._json(401, protocol.error_body("invalid or missing API key"), authorized=False)
        return None

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self._path()
        if path not in (protocol.STATUS_PATH, protocol.PING_PATH):
            self._json(404, protocol.error_body(f"no such endpoint: GET {path}"), authorized=False)
            return
        auth = self._check_key()
        if auth is None:
            return
        if path == protocol.PING_PATH:
            self._json(200, {"ok": True, "devices": len(self.sim.device_ids()),
                             "version": f"sim-{__version__}"}, authorized=auth)
        elif self.sim._take("status_garbage_next_n"):
            self._send(200, GARBAGE, RequestRecord("GET", path, 200, auth, at=time.time()), "text/html")
        else:
            self._json(200, self.sim.status_body(), authorized=auth)

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        if path != protocol.BATCH_PATH:
            self._json(404, protocol.error_body(f"no such endpoint: POST {path}"), authorized=False)
            return
        auth = self._check_key()
        if auth is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > protocol.MAX_BODY_BYTES:
            self._json(413, protocol.error_body(f"body over {protocol.MAX_BODY_BYTES} bytes"), authorized=auth)
            return
        body = self.rfile.read(length)
        try:
            req = protocol.parse_batch_request(body)
        except protocol.ProtocolError as exc:
            self._json(400, protocol.error_body(str(exc)), authorized=auth)
            return
        record = {"authorized": auth, "packet_type": int(req["packet_type"]), "devices": tuple(req["devices"]),
                  "request_id": req["request_id"], "command_id": req["command_id"]}
        if self.sim._take("fail_next_n"):
            self._json(500, protocol.error_body("internal server error (simulated)"), **record)
            return
        if len(req["devices"]) > self.sim.max_devices:
            self._json(413, protocol.error_body(f"at most {self.sim.max_devices} devices per request"), **record)
            return
        if self.sim.delay_s > 0 and self.sim._stopping.wait(self.sim.delay_s):
            # A gateway going away answers nothing; status 0 records that.
            self.sim.requests.append(RequestRecord("POST", path, 0, at=time.time(), **record))
            return
        self._json(200, self.sim.handle_batch(req), **record)
