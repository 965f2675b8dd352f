"""The hub side: LED boards on RS-485 lines, each line behind a serial port or a serial-over-TCP
converter; one request, one reply, per board."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from hub.addresses import AddressError, SerialAddress
from hub.vendor import (Ack, DeviceRef, Health, Manifest, Outcome, Outgoing, Result, ResultSink, StatusParseError,
                        VendorAdapter)

from hub_serial_led import __version__, parsing
from hub_serial_led.address import BoardAddress, parse_address
from hub_serial_led.bus import BUSES, Bus, BusError, PortSettings, PortUnavailable
from hub_serial_led.commands import Request, build_request, interpret
from hub_serial_led.poller import StatusPoller

log = logging.getLogger(__name__)

VENDOR = "serial_led"
_MAX_PARALLEL_BUSES = 16


class SerialLedConfigSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should fail loudly, not silently use a default

    baudrate = fields.Int(load_default=9600, validate=validate.Range(min=300, max=4_000_000),
                          metadata={"description": "Line speed of every port (ignored by socket:// converters)"})
    timeout_s = fields.Float(load_default=0.5, validate=validate.Range(min=0.01, max=60),
                             metadata={"description": "How long to wait for a board's complete reply"})
    inter_frame_gap_ms = fields.Float(load_default=20.0, validate=validate.Range(min=0, max=5000),
                                      metadata={"description": "Quiet time on the line after each transaction"})
    retries_per_frame = fields.Int(load_default=0, validate=validate.Range(min=0, max=10),
                                   metadata={"description": "Immediate re-sends of a frame that got no good "
                                                            "reply; 0 leaves retrying to the hub's backoff"})
    poll_interval_s = fields.Float(load_default=10.0, validate=validate.Range(min=0, max=86400),
                                   metadata={"description": "Seconds between status polls of each known board; "
                                                            "0 turns polling off"})
    offline_after = fields.Int(load_default=2, validate=validate.Range(min=1, max=1000),
                               metadata={"description": "Unanswered polls in a row before a board is offline"})
    keep_open = fields.Bool(load_default=True,
                            metadata={"description": "Keep ports open between transactions; false for "
                                                     "converters that accept one TCP client, shared by "
                                                     "several hub processes"})
    lock_dir = fields.Str(load_default=None, allow_none=True,
                          metadata={"description": "Where per-port lock files serialise hub processes "
                                                   "(default: <tmp>/hub-serial-led)"})

    @validates("poll_interval_s")
    def _poll_ok(self, value: float, **_: Any) -> None:
        if 0 < value < 0.05:
            raise ValidationError("must be 0 (off) or at least 0.05")


class SerialLedAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR,
        title="LED bulletin boards on RS-485 (framed binary protocol, CRC-16)",
        version=__version__,
        protocols=("serial-led-frame/1",),
        device_kinds=("led_board",),
        capabilities=frozenset({"led.text", "led.text_unicode", "led.brightness", "power.switch",
                                "status.heartbeat", "status.faults"}),
        config_schema=SerialLedConfigSchema,
        # a device path under the province's serial prefixes, or a serial-over-TCP converter
        # (socket://host:port) it allows; never spy://, loop://, rfc2217:// or the hub's own services
        address=SerialAddress(url_schemes=("socket",)),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = SerialLedConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{VENDOR} config: {err.messages}") from None
        self._port_settings = PortSettings(baudrate=self.settings["baudrate"], keep_open=self.settings["keep_open"],
                                           lock_dir=self.settings["lock_dir"])
        self._buses: dict[str, Bus] = {}  # every bus this adapter holds, for sending or watching
        self._send_urls: set[str] = set()
        self._watched: dict[str, dict[int, str]] | None = None  # url -> board -> device address
        self._lock = threading.Lock()
        self._poller: StatusPoller | None = None

    @property
    def _timeout_s(self) -> float:
        return float(self.settings["timeout_s"])

    @property
    def _gap_s(self) -> float:
        return float(self.settings["inter_frame_gap_ms"]) / 1000

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        """Nothing to connect yet: ports are named by device addresses and opened on first use."""

    def close(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.stop()
        with self._lock:
            buses, self._buses = list(self._buses.values()), {}
            self._send_urls.clear()
            self._watched = None
        for bus in buses:
            BUSES.release(bus)

    def _bus(self, url: str) -> Bus:
        with self._lock:
            self._send_urls.add(url)
            return self._hold(url)

    def _hold(self, url: str) -> Bus:
        """Caller holds self._lock."""
        bus = self._buses.get(url)
        if bus is None:
            bus = self._buses[url] = BUSES.acquire(url, self._port_settings)
        return bus

    # -- sending ---------------------------------------------------------------------------
    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        results: list[Result] = []
        by_bus: dict[str, list[tuple[Outgoing, BoardAddress, Request]]] = {}
        for item in batch:
            try:
                self.check_address(item.device.address)  # before a port is opened or a lock file made
                addr = parse_address(item.device.address)
                request = build_request(addr.board, item.device, item.envelope)
            except AddressError as exc:
                results.append(Result(item.device.id, Outcome.FAILED, reason=f"address refused: {exc}"))
                continue
            except ValueError as exc:  # the address or the params are wrong: retrying won't help
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc)))
                continue
            by_bus.setdefault(addr.port, []).append((item, addr, request))
        if len(by_bus) <= 1:
            for url, items in by_bus.items():
                results += self._send_on_bus(url, items)
            return results
        with ThreadPoolExecutor(min(len(by_bus), _MAX_PARALLEL_BUSES), thread_name_prefix=f"{VENDOR}-send") as pool:
            for part in pool.map(lambda kv: self._send_on_bus(*kv), by_bus.items()):
                results += part
        return results

    def _send_on_bus(self, url: str, items: list[tuple[Outgoing, BoardAddress, Request]]) -> list[Result]:
        """Boards on one line in turn. Once the port itself fails, the rest of the line fails
        with the same reason at once rather than each waiting out a connect timeout."""
        bus = self._bus(url)
        out: list[Result] = []
        port_down: str | None = None
        for item, addr, request in items:
            bus.remember(addr.board, item.device.address)
            if port_down is not None:
                out.append(Result(item.device.id, Outcome.FAILED, reason=port_down, transient=True))
                continue
            try:
                out.append(self._exchange(bus, item.device, request, item.envelope.expires_at))
            except PortUnavailable as exc:
                port_down = str(exc)
                out.append(Result(item.device.id, Outcome.FAILED, reason=port_down, transient=True))
            except Exception as exc:  # noqa: BLE001 - one board's surprise must not cost the others
                log.exception("%s: unexpected error talking to %s", VENDOR, item.device.address)
                out.append(Result(item.device.id, Outcome.FAILED, transient=True,
                                  reason=f"adapter error: {type(exc).__name__}: {exc}"))
        return out

    def _exchange(self, bus: Bus, device: DeviceRef, request: Request, expires_at: datetime) -> Result:
        # Checked per board, just before it is its turn: a long line can outlast a deadline, and
        # the frame has no field that would let the board refuse a stale command itself.
        now = datetime.now(timezone.utc)
        deadline = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
        if deadline <= now:
            return Result(device.id, Outcome.FAILED,
                          reason=f"expired at {deadline.isoformat(timespec='seconds')} before it was sent to the board")
        tries = 1 + int(self.settings["retries_per_frame"])
        reason = ""
        for _ in range(tries):
            try:
                reply = bus.transact(request.frame, self._timeout_s, self._gap_s)
            except PortUnavailable:
                raise
            except BusError as exc:
                reason = str(exc)
                continue
            return interpret(device.id, request, reply)
        if tries > 1:
            reason = f"{reason} ({tries} frames sent)"
        return Result(device.id, Outcome.FAILED, reason=reason, transient=True)

    # -- status ----------------------------------------------------------------------------
    def watch(self, devices: Sequence[DeviceRef]) -> None:
        """The enabled devices of this vendor, from the hub (before listen() and after every
        registry change): from now on exactly these boards are polled for status. Their ports
        stay open between polls; a port no device is watched on any more is let go."""
        watched: dict[str, dict[int, str]] = {}
        for device in devices:
            try:
                self.check_address(device.address)
                addr = parse_address(device.address)
            except ValueError as exc:  # AddressError too
                log.warning("%s: not polling %s: %s", VENDOR, device.id, exc)
                continue
            watched.setdefault(addr.port, {})[addr.board] = device.address
        with self._lock:
            before = set(self._watched or {})
            self._watched = watched
            for url in watched:
                self._hold(url)
            gone = [self._buses.pop(url) for url in before - set(watched) - self._send_urls if url in self._buses]
        for bus in gone:
            BUSES.release(bus)

    def _poll_targets(self) -> list[tuple[Bus, dict[int, str]]]:
        """The buses and boards to poll now, each bus acquired for the caller, who releases it.
        Before the hub has called watch() (an older core), every board any adapter in this
        process has sent to stands in for the device list."""
        with self._lock:
            if self._watched is None:
                return [(bus, bus.boards()) for bus in BUSES.live()]
            return [(BUSES.acquire(url, self._port_settings), dict(boards)) for url, boards in self._watched.items()]

    def listen(self, sink: ResultSink) -> None:
        """Start polling the watched boards every poll_interval_s (see watch())."""
        if self._poller is not None or self.settings["poll_interval_s"] <= 0:
            return
        self._poller = StatusPoller(VENDOR, sink, self._poll_targets, BUSES.release,
                                    interval_s=float(self.settings["poll_interval_s"]),
                                    offline_after=int(self.settings["offline_after"]), timeout_s=self._timeout_s,
                                    gap_s=self._gap_s, parse=self.parse_status)
        self._poller.start()

    def poll_now(self) -> None:
        """One poll cycle in the caller's thread (tests, `hub` commands); needs listen() first."""
        if self._poller is None:
            raise RuntimeError("listen() has not started a poller (or poll_interval_s is 0)")
        self._poller.poll_once()

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        return parsing.parse_status(address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        raise StatusParseError(f"ack from {address}: {VENDOR} boards answer synchronously; replies carry no "
                               "command id and are interpreted by send()")

    def health(self) -> Health:
        with self._lock:
            buses = list(self._buses.values())
        if not buses:
            return Health(True, "no port used yet")
        broken = [bus.last_error for bus in buses if bus.last_error]
        if broken:
            return Health(False, "; ".join(b for b in broken if b))
        return Health(True, f"{len(buses)} port(s): {', '.join(b.url for b in buses)}")
