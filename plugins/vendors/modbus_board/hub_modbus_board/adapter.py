"""The hub side: commands as register writes confirmed by the ack register and a read-back,
status by polling."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from hub.addresses import AddressError, EndpointAddress
from hub.vendor_traits import Traits
from hub.vendor import (Ack, DeviceRef, Health, Manifest, Outcome, Outgoing, Result, ResultSink, StatusParseError,
                        TransientError, VendorAdapter)

from hub_modbus_board import __version__, status
from hub_modbus_board.addressing import BoardAddress, Endpoint, parse_address
from hub_modbus_board.client import Connections
from hub_modbus_board.delivery import deliver_group
from hub_modbus_board.poller import Poller, Roster
from hub_modbus_board.registers import FLAG_UNICODE, HR_TEXT_FLAGS, TEXT_MAX_BYTES

log = logging.getLogger(__name__)

VENDOR = "modbus_board"
HEARTBEAT_PERIOD_S = 1.0  # the controller's IR 3 ticks once a second


class ModbusBoardConfigSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should fail loudly, not silently use a default

    timeout_s = fields.Float(load_default=2.0, validate=validate.Range(min=0.05, max=60),
                             metadata={"description": "Connect and per-request timeout"})
    retries = fields.Int(load_default=0, validate=validate.Range(min=0, max=1),
                         metadata={"description": "pymodbus's own resends of a request that timed out; keep 0 "
                                                  "so that the hub's retry policy decides"})
    ack_timeout_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.0, max=60),
                                 metadata={"description": "How long to wait for HR 201 to show the command's "
                                                          "sequence; timeout_s when absent"})
    poll_interval_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.05, max=3600),
                                   metadata={"description": "How often listen() reads each unit's status block"})
    offline_after_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.1, max=86400),
                                   metadata={"description": "A unit with no answer and no heartbeat progress "
                                                            "for this long is offline; max(3 polls, 3 s) "
                                                            "when absent"})
    status_refresh_s = fields.Float(load_default=60.0, validate=validate.Range(min=1, max=86400),
                                    metadata={"description": "Report an unchanged status at least this often; "
                                                             "keep it below the hub's heartbeat_timeout_s "
                                                             "(180 s by default) or quiet units go offline"})
    max_parallel_endpoints = fields.Int(load_default=16, validate=validate.Range(min=1, max=512),
                                        metadata={"description": "Endpoints served at once, for sending and "
                                                                 "for polling each"})
    max_timeouts_per_endpoint = fields.Int(load_default=2, validate=validate.Range(min=1, max=1000),
                                           metadata={"description": "After this many units in a row time out, "
                                                                    "the rest behind that endpoint fail "
                                                                    "transiently without being tried"})

    @validates_schema
    def _offline_after_polls(self, data: dict[str, Any], **_: Any) -> None:
        after = data.get("offline_after_s")
        if after is not None and after <= data["poll_interval_s"] + HEARTBEAT_PERIOD_S:
            raise ValidationError("must exceed poll_interval_s plus the 1 s heartbeat period, or every "
                                  "unit would flap offline between polls", field_name="offline_after_s")


class ModbusBoardAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR,
        title="LED boards and amplifiers behind Modbus TCP controllers",
        version=__version__,
        protocols=("modbus-tcp",),
        device_kinds=("led_board", "speaker"),
        capabilities=frozenset({
            "led.text", "led.text_unicode", "led.brightness", "audio.volume", "power.switch",
            "status.heartbeat", "status.faults",
        }),
        config_schema=ModbusBoardConfigSchema,
        # host[:port]/unit, only at hosts and ports the province allows (never the hub's own services)
        address=EndpointAddress(default_port=502, unit=True, unit_required=True,
                                description="host[:port]/unit of a Modbus TCP controller the province allows"),
        # the text slot's registers: the hub fails longer text per board before it is sent (hub/delivery/led_fit.py)
        traits=Traits(led_text_max_bytes=TEXT_MAX_BYTES),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = ModbusBoardConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{VENDOR} config: {err.messages}") from None
        s = self.settings
        self.ack_timeout_s: float = s["timeout_s"] if s["ack_timeout_s"] is None else s["ack_timeout_s"]
        self.offline_after_s: float = (max(3 * s["poll_interval_s"], 3.0) if s["offline_after_s"] is None
                                       else s["offline_after_s"])
        self.roster = Roster()
        # Commands and polls get a connection each per endpoint, so a poll stuck on a dead unit
        # never holds up an emergency message to the unit next to it.
        self._commands = Connections(s["timeout_s"], s["retries"])
        self._polls = Connections(s["timeout_s"], s["retries"])
        self._pool: ThreadPoolExecutor | None = None
        self._poller: Poller | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._bad_addresses: set[str] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Nothing to connect up front: each endpoint is connected on first use and kept."""
        self._executor()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise TransientError(f"{VENDOR} adapter is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.settings["max_parallel_endpoints"],
                                                thread_name_prefix=f"{VENDOR}-send")
            return self._pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            poller, self._poller = self._poller, None
            pool, self._pool = self._pool, None
        if poller is not None:
            poller.stop()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._polls.close()
        self._commands.close()

    def health(self) -> Health:
        known = len(self._commands)
        failing = self._commands.errors()
        if not known:
            return Health(True, "no endpoint contacted yet")
        if len(failing) == known:
            return Health(False, f"none of {known} endpoints answers: {'; '.join(list(failing.values())[:3])}")
        detail = f"{known - len(failing)} of {known} endpoints answer"
        if failing:
            detail += f"; failing: {'; '.join(list(failing.values())[:3])}"
        return Health(True, detail)

    # -- sending ------------------------------------------------------------------------------

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        results: list[Result] = []
        groups: dict[Endpoint, list[tuple[BoardAddress, Outgoing]]] = {}
        for item in batch:
            try:
                self.check_address(item.device.address)  # before any connection is opened
                address = parse_address(item.device.address)
            except AddressError as exc:
                results.append(Result(item.device.id, Outcome.FAILED, reason=f"address refused: {exc}"))
                continue
            except ValueError as exc:
                results.append(Result(item.device.id, Outcome.FAILED, reason=str(exc)))
                continue
            groups.setdefault(address.endpoint, []).append((address, item))
        self.roster.sent((item.device.address, a) for items in groups.values() for a, item in items)
        pool = self._executor()
        # Endpoints in parallel, units behind one endpoint in turn over its one connection.
        futures: list[tuple[Future[list[Result]], list[tuple[BoardAddress, Outgoing]]]] = [
            (pool.submit(deliver_group, self._commands.get(ep), items, self.ack_timeout_s,
                         self.settings["max_timeouts_per_endpoint"]), items)
            for ep, items in groups.items()]
        for future, items in futures:
            try:
                results.extend(future.result())
            except Exception as exc:  # noqa: BLE001 - one endpoint's bug must not lose the others' results
                log.exception("%s: sending to %s failed", VENDOR, items[0][0].endpoint)
                results.extend(Result(item.device.id, Outcome.FAILED, transient=True,
                                      reason=f"adapter error: {type(exc).__name__}: {exc}") for _a, item in items)
        return results

    def probe_capabilities(self, device: DeviceRef) -> frozenset[str]:
        """What this unit can really do, from its flags (HR 4): the manifest's capabilities less
        led.text_unicode on an ASCII-only board. Raises ModbusFault when it cannot be read."""
        self.check_address(device.address)
        address = parse_address(device.address)
        conn = self._commands.get(address.endpoint)
        with conn.session():
            flags = conn.read_holding(address.unit, HR_TEXT_FLAGS, 1)[0]
        caps = set(self.manifest.capabilities)
        if not flags & FLAG_UNICODE:
            caps.discard("led.text_unicode")
        return frozenset(caps)

    # -- status -------------------------------------------------------------------------------

    def watch(self, devices: Sequence[DeviceRef]) -> None:
        """The devices to poll (replacing the previous list). The hub's listen() contract carries
        no device list, so whoever runs the listener hands it the registry's devices here."""
        refused = []
        for d in devices:
            try:
                self.check_address(d.address)
            except ValueError:
                refused.append(d.address)
        bad = refused + self.roster.watch(d.address for d in devices if d.address not in refused)
        if bad and set(bad) != self._bad_addresses:  # the ingest calls this every 30 s: say it once
            log.warning("%s: not polling %d devices with bad addresses: %s", VENDOR, len(bad), ", ".join(bad[:5]))
        self._bad_addresses = set(bad)

    def listen(self, sink: ResultSink) -> None:
        """Poll every watched unit, and every unit sent to, each `poll_interval_s`; report status
        when it changes and presence when a unit stops or starts answering with a live heartbeat."""
        with self._lock:
            if self._closed or self._poller is not None:
                return
            s = self.settings
            self._poller = Poller(VENDOR, self.roster, self._polls, sink, interval_s=s["poll_interval_s"],
                                  offline_after_s=self.offline_after_s, refresh_s=s["status_refresh_s"],
                                  max_parallel=s["max_parallel_endpoints"])
            self._poller.start()

    def wait_ready(self, timeout: float) -> bool:
        return True  # acks are synchronous; polling has nothing to subscribe to

    @property
    def poller(self) -> Poller | None:
        return self._poller

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        """`payload` is IR 0-8 as 18 big-endian bytes (see README)."""
        return status.parse_status(address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        raise StatusParseError(f"ack from {address}: {VENDOR} devices acknowledge synchronously through "
                               "HR 201; there is no ack payload to parse")
