"""A simulated gateway on loopback: the same HTTP protocol, speakers that replace what plays on
every play (no priority handling), volume 1–15, and the vendor's own fault modes."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from hub.simulation import check_faults
from hub.units import from_vendor_scale
from hub.vendor import DeviceRef

# Fault modes of this gateway, and the requirements each must make fail (declared to the suite
# through conformance_setup, so the fault matrix proves them).
OWN_FAULTS: dict[str, list[str]] = {
    # the device vanishes from the gateway's status list: it is offline (so a link loss cannot be
    # shown either), nothing is confirmed
    "missing_from_list": ["PLAY-01", "STOP-01", "VOL-01", "VOL-02", "ACK-01", "PRIO-01", "PRIO-02", "PRIO-04",
                          "STAT-01", "STAT-02", "HB-01", "LINK-01", "LINK-02", "TIME-01", "TIME-02"],
    # the gateway answers HTTP 503 to every batch that carries the device
    "gateway_5xx": ["PLAY-01", "STOP-01", "VOL-01", "VOL-02", "ACK-01", "PRIO-01", "PRIO-02", "PRIO-04",
                    "STAT-02", "LINK-02"],
    # the device keeps playing when told to stop
    "ignores_stop": ["STOP-01"],
}
# Of the hub's vocabulary, none makes sense here: the gateway has no acks (acks_without_acting,
# silent, rejects_all), no authentication (accepts_unauthenticated), no priority handling to get
# wrong (ignores_emergency: the hub arbitrates), no board (mangles_diacritics), and its status
# list is the heartbeat; misreported volume would only show as unconfirmed commands.
SUPPORTED: tuple[str, ...] = ()


class Speaker:
    def __init__(self, imei: str, faults: set[str]) -> None:
        self.imei, self.faults = imei, faults
        self.state, self.url, self.vol = "idle", None, 8
        self.until = 0.0
        self.linked = True

    def apply(self, c: dict[str, Any]) -> None:
        op = c.get("op")
        if op == "play":
            self.state, self.url = "playing", c.get("url")
            self.until = time.monotonic() + _duration(c.get("url"))
        elif op == "stop" and "ignores_stop" not in self.faults:
            self.state, self.url = "idle", None
        elif op == "volume" and isinstance(c.get("vol"), int) and 1 <= c["vol"] <= 15:
            self.vol = c["vol"]

    def tick(self) -> None:
        if self.state == "playing" and time.monotonic() >= self.until:
            self.state, self.url = "idle", None


def _duration(url: Any) -> float:
    # The media declared in conformance_setup: "short" clips last 8 s, the others 30 s (simulated;
    # nothing is fetched).
    return 8.0 if isinstance(url, str) and "short" in url else 30.0


class Gateway:
    def __init__(self, config: Mapping[str, Any], devices: Iterable[DeviceRef],
                 faults: Mapping[str, set[str]] | None = None) -> None:
        check_faults(faults, SUPPORTED, extra=OWN_FAULTS)
        faults = faults or {}
        self.speakers = {d.address: Speaker(d.address, set(faults.get(d.address, ()))) for d in devices}
        parts = urlsplit(config["url"])
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- the simulator's interface to the suite -----------------------------------------------------
    def start(self) -> None:
        gw = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                if self.path != "/status":
                    return self._reply(404, {"error": "not found"})
                return self._reply(200, gw.listing())

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/commands":
                    return self._reply(404, {"error": "not found"})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                code = gw.apply(body.get("commands") or [])
                return self._reply(code, {"accepted": len(body.get("commands") or [])} if code < 300
                                   else {"error": "internal error"})

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="batch-gateway-sim", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def listing(self) -> dict[str, Any]:
        with self._lock:
            out = []
            for s in self.speakers.values():
                s.tick()
                if s.linked and "missing_from_list" not in s.faults:
                    out.append({"imei": s.imei, "state": s.state, "url": s.url, "vol": s.vol})
        return {"time": datetime.now(timezone.utc).isoformat(), "devices": out}

    def apply(self, commands: list[dict[str, Any]]) -> int:
        with self._lock:
            known = [self.speakers[c["imei"]] for c in commands if c.get("imei") in self.speakers]
            if any("gateway_5xx" in s.faults for s in known):
                return 503
            for c in commands:
                s = self.speakers.get(c.get("imei"))
                if s is not None and s.linked:
                    s.apply(c)
        return 202

    def observe(self, address: str) -> dict[str, Any]:
        with self._lock:
            s = self.speakers[address]
            s.tick()
            return {"activity": s.state, "source": s.url, "volume": from_vendor_scale(s.vol, 1, 15)}

    def cut_link(self, address: str) -> None:
        with self._lock:
            self.speakers[address].linked = False

    def restore_link(self, address: str) -> None:
        with self._lock:
            self.speakers[address].linked = True
