"""The generic Modbus TCP driver: writes a profile's registers, reads them back to verify, and
polls status. Modbus answers synchronously, so a verified write is ACKED inside send()."""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from hub.vendor import Ack, DeviceRef, Health, Outcome, Outgoing, Result, ResultSink, StatusParseError, VendorAdapter

from hub_profiles.context import RenderContext, expired_reason
from hub_profiles.model import ModbusCommand, ModbusSettings, ModbusStatus, Profile, RegisterRef
from hub_profiles.mqtt_parse import status_from
from hub_profiles.template import RenderError, to_text
from hub_profiles.values import MISSING, Source, same

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9._-]+))"
                      r"(?::(?P<port>\d{1,5}))?(?:/(?P<unit>\d{1,3}))?$")


class ModbusProfileConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    timeout_s = fields.Float(load_default=3.0, validate=validate.Range(min=0.1, max=60),
                             metadata={"description": "Connect and response timeout per device"})
    retries = fields.Int(load_default=1, validate=validate.Range(min=0, max=10))
    max_parallel = fields.Int(load_default=8, validate=validate.Range(min=1, max=256),
                              metadata={"description": "Devices written at once in a batch"})
    poll_interval_s = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.1, max=86400),
                                   metadata={"description": "Status polling period; the profile's "
                                                            "status.interval_s when absent"})
    poll_addresses = fields.List(fields.Str(), load_default=list,
                                 metadata={"description": "Devices polled besides those the hub hands "
                                                          "watch() (for a listener run outside the hub)"})


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    unit: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.unit}"


def parse_address(address: str, defaults: ModbusSettings) -> Endpoint:
    """`host[:port][/unit]`; the profile's modbus_tcp port and unit fill what is left out."""
    m = _ADDRESS.match(address.strip())
    if not m:
        raise ValueError(f"device address {address!r} is not host[:port][/unit]")
    port = int(m.group("port") or defaults.port)
    unit = int(m.group("unit") if m.group("unit") is not None else defaults.unit)
    if not 1 <= port <= 65535 or not 0 <= unit <= 255:
        raise ValueError(f"device address {address!r}: port must be 1–65535 and unit 0–255")
    return Endpoint(m.group("v6") or m.group("host"), port, unit)


class DeviceRefused(Exception):
    """The device answered with a Modbus exception (illegal address, value…): final, not transient."""


class _Link:
    """One device's connection; Modbus TCP devices serve one request at a time."""

    def __init__(self, endpoint: Endpoint, timeout: float, retries: int) -> None:
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.client = ModbusTcpClient(endpoint.host, port=endpoint.port, timeout=timeout, retries=retries)

    def _check(self, rr: Any, what: str) -> Any:
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            raise DeviceRefused(f"device refused {what}" + (f" (Modbus exception {code})" if code else ""))
        return rr

    def connect(self) -> None:
        if not self.client.connect():
            raise ConnectionError(f"cannot connect to {self.endpoint.host}:{self.endpoint.port}")

    def write(self, ref: RegisterRef, value: Any) -> None:
        unit = self.endpoint.unit
        if ref.table == "coil":
            self._check(self.client.write_coil(ref.address, bool(value), device_id=unit), f"writing {ref.describe()}")
        else:
            self._check(self.client.write_register(ref.address, int(value), device_id=unit),
                        f"writing {ref.describe()}")

    def read(self, table: str, address: int) -> Any:
        unit, what = self.endpoint.unit, f"reading {table} {address}"
        if table == "register":
            return self._check(self.client.read_holding_registers(address, count=1, device_id=unit), what).registers[0]
        if table == "input_register":
            return self._check(self.client.read_input_registers(address, count=1, device_id=unit), what).registers[0]
        if table == "coil":
            return bool(self._check(self.client.read_coils(address, count=1, device_id=unit), what).bits[0])
        return bool(self._check(self.client.read_discrete_inputs(address, count=1, device_id=unit), what).bits[0])

    def close(self) -> None:
        self.client.close()


def _fit(ref: RegisterRef, value: Any) -> Any:
    if ref.table == "coil":
        if not isinstance(value, bool):
            raise RenderError(f"{ref.describe()} takes true or false, not {to_text(value)!r}")
        return value
    if isinstance(value, str):
        value = value.strip()
        if value.isdigit():
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise RenderError(f"{to_text(value)!r} does not fit {ref.describe()} (an integer 0–65535)")
    return value


class ModbusProfileAdapter(VendorAdapter):
    """Subclassed once per profile (hub_profiles.adapters) with `manifest` and `profile` set."""

    profile: ClassVar[Profile]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = ModbusProfileConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{self.manifest.name} config: {err.messages}") from None
        self.defaults = self.profile.settings if isinstance(self.profile.settings, ModbusSettings) else ModbusSettings()
        self._links: dict[Endpoint, _Link] = {}
        self._links_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._sink: ResultSink | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._online: dict[str, bool] = {}
        self._last_error: str | None = None
        self._watched: tuple[str, ...] = ()

    @property
    def vendor(self) -> str:
        return self.manifest.name

    # -- connections ---------------------------------------------------------------------------
    def open(self) -> None:
        # Nothing to connect up front: every device is its own TCP endpoint, reached on demand.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings["max_parallel"], thread_name_prefix=f"{self.vendor}-modbus")

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=self.settings["timeout_s"] * 2 + 5)
            self._poller = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._links_lock:
            links, self._links = list(self._links.values()), {}
        for link in links:
            link.close()

    def _link(self, endpoint: Endpoint) -> _Link:
        with self._links_lock:
            link = self._links.get(endpoint)
            if link is None:
                link = self._links[endpoint] = _Link(endpoint, self.settings["timeout_s"], self.settings["retries"])
            return link

    def health(self) -> Health:
        if self._last_error:
            return Health(False, f"last Modbus error: {self._last_error}")
        return Health(True, "Modbus TCP: devices are connected on demand")

    # -- sending -------------------------------------------------------------------------------
    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        if self._pool is None:
            self.open()
        assert self._pool is not None
        return list(self._pool.map(self._send_one, batch))

    def _send_one(self, item: Outgoing) -> Result:
        device, env = item.device, item.envelope
        command = self.profile.commands.get(env.verb)
        if not isinstance(command, ModbusCommand):
            return Result(device.id, Outcome.FAILED, reason=f"profile {self.vendor} has no command for {env.verb}")
        if (why := expired_reason(env)) is not None:
            return Result(device.id, Outcome.FAILED, reason=why)
        try:
            endpoint = parse_address(device.address, self.defaults)
            self.check_address(device.address)  # hub.addresses: before any connection is made
            ctx = RenderContext(env, device, values=command.values,
                                unicode_text="led.text_unicode" in (device.capabilities or self.profile.capabilities))
            writes = [(w, _fit(w.ref, w.value.evaluate(ctx))) for w in command.writes]
        except (ValueError, RenderError) as exc:  # RenderError is a ValueError; neither gets better by retrying
            return Result(device.id, Outcome.FAILED, reason=f"{env.verb}: {exc}")
        link = self._link(endpoint)
        readback: dict[tuple[str, int], Any] = {}
        try:
            with link.lock:
                link.connect()
                for write, value in writes:
                    link.write(write.ref, value)
                    if write.verify is None:
                        continue
                    if write.verify_delay_s:
                        time.sleep(write.verify_delay_s)
                    got = link.read(write.verify.table, write.verify.address)
                    readback[(write.verify.table, write.verify.address)] = got
                    if not same(got, value):
                        return Result(device.id, Outcome.FAILED,
                                      reason=f"read back {to_text(got)} from {write.verify.describe()} after "
                                             f"writing {to_text(value)} to {write.ref.describe()}",
                                      detail=self._detail(readback))
        except DeviceRefused as exc:
            return Result(device.id, Outcome.FAILED, reason=str(exc))
        except (ConnectionError, ModbusException, OSError) as exc:
            link.close()  # a half-read response must not be taken for the next request's
            self._last_error = f"{endpoint}: {exc}"
            return Result(device.id, Outcome.FAILED, transient=True, reason=f"Modbus {endpoint}: {exc}")
        self._last_error = None
        return Result(device.id, Outcome.ACKED, detail=self._detail(readback) or None)

    def _detail(self, readback: dict[tuple[str, int], Any]) -> dict[str, Any]:
        """The read-back values in the hub's terms, through the status fields that read the same
        registers (volume 16 on 0–31 reads as 52)."""
        status = self.profile.status
        if not isinstance(status, ModbusStatus) or not readback:
            return {}
        out: dict[str, Any] = {}
        for target, spec in status.fields.items():
            key = (spec.source.table, spec.source.address)
            if key in readback and "." not in target:
                try:
                    out[target] = spec.read(lambda _s, v=readback[key]: v)
                except RenderError:
                    continue
        return out

    # -- status --------------------------------------------------------------------------------
    def read_status(self, address: str) -> dict[str, Any]:
        """Read every status register of one device now (raises on transport errors)."""
        status = self.profile.status
        if not isinstance(status, ModbusStatus):
            raise StatusParseError(f"status from {address}: the profile reads no status")
        endpoint = parse_address(address, self.defaults)
        self.check_address(address)  # watched devices and poll_addresses alike
        link = self._link(endpoint)
        snapshot: dict[str, Any] = {}
        try:
            with link.lock:
                link.connect()
                for spec in status.fields.values():
                    src = spec.source
                    if src.table is not None and f"{src.table}:{src.address}" not in snapshot:
                        snapshot[f"{src.table}:{src.address}"] = link.read(src.table, src.address)
        except (ConnectionError, ModbusException, OSError):
            link.close()
            raise
        return self.parse_status(address, json.dumps(snapshot).encode())

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        """`payload` is a register snapshot as JSON, {"register:1": 16, "coil:0": true}: what the
        poller reads, so that polled and injected status go through the same mapping."""
        status = self.profile.status
        if not isinstance(status, ModbusStatus):
            raise StatusParseError(f"status from {address}: the profile reads no status")
        try:
            snapshot = json.loads(payload)
        except ValueError as exc:
            raise StatusParseError(f"status from {address}: not a JSON register snapshot ({exc})") from None
        if not isinstance(snapshot, dict):
            raise StatusParseError(f"status from {address}: expected a JSON object of registers")
        wanted = {f"{f.source.table}:{f.source.address}" for f in status.fields.values() if f.source.table}
        if wanted and not wanted & snapshot.keys():
            # Every field would fall back to its default: a status made of nothing the device said.
            raise StatusParseError(f"status from {address}: the snapshot holds none of the registers the profile "
                                   f"reads ({', '.join(sorted(wanted))})")

        def get(src: Source) -> Any:
            return snapshot.get(f"{src.table}:{src.address}", MISSING)

        return status_from(address, status.fields, get)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        raise StatusParseError(f"ack from {address}: Modbus devices answer each write at once; "
                               "there are no acknowledgement messages")

    def watch(self, devices: Sequence[DeviceRef]) -> None:
        # Replaced whole, so the poller (another thread) only ever sees a complete list.
        self._watched = tuple(dict.fromkeys(d.address for d in devices))

    def polled(self) -> list[str]:
        return list(dict.fromkeys((*self._watched, *self.settings["poll_addresses"])))

    def listen(self, sink: ResultSink) -> None:
        """Poll the watched devices' status: Modbus devices do not report on their own."""
        self._sink = sink
        status = self.profile.status
        if not isinstance(status, ModbusStatus) or self._poller:
            return
        self._stop.clear()
        interval = self.settings["poll_interval_s"] or status.interval_s
        self._poller = threading.Thread(target=self._poll, args=(sink, interval), daemon=True,
                                        name=f"{self.vendor}-poller")
        self._poller.start()

    def _poll(self, sink: ResultSink, interval: float) -> None:
        while not self._stop.is_set():
            for address in self.polled():
                if self._stop.is_set():
                    return
                self._poll_one(sink, address)
            self._stop.wait(interval)

    def _poll_one(self, sink: ResultSink, address: str) -> None:
        try:
            status = self.read_status(address)
        except DeviceRefused as exc:  # it answers, so it is online; the profile asks for what it lacks
            log.warning("%s: status of %s: %s", self.vendor, address, exc)
            return
        except (ConnectionError, ModbusException, OSError) as exc:
            if self._online.get(address, True):  # report the change, not every failed poll
                log.info("%s: %s does not answer: %s", self.vendor, address, exc)
                sink.presence(self.vendor, address, False)
            self._online[address] = False
            return
        except ValueError as exc:  # StatusParseError or a bad address: the profile or registry is wrong
            log.warning("%s: status of %s: %s", self.vendor, address, exc)
            return
        self._online[address] = True
        try:
            sink.status(self.vendor, address, status)
        except Exception as exc:  # noqa: BLE001 - a faulty sink must not stop polling
            log.warning("%s: sink failed on status from %s: %r", self.vendor, address, exc)
