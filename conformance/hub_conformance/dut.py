"""The device under test and the hub around it.

The suite plays the hub's side through hub.testing.HubHarness — real dispatch, the real rq job,
the plugin's adapter, the real ingest — and drives either the plugin's simulator or real
devices. Beside the harness it keeps a *raw driver*: a second adapter instance whose answers
are captured directly, for what the hub itself would never send (expired commands, invalid
parameters, unknown verbs, wrong credentials).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from hub.config import get_settings
from hub.schemas.status import STATUS_FIELDS
from hub.store.models import TERMINAL_STATES, Device, DeviceStatus
from hub.testing import HubHarness
from hub.vendor import Ack, DeviceRef, Envelope, Outcome, Outgoing, TransientError, VendorAdapter
from hub.vendor_traits import traits_of

from hub_conformance import loading, witness
from hub_conformance.params import MEASUREMENT_SLACK_S, TOLERANCE, Resolved
from hub_conformance.target import Target

log = logging.getLogger(__name__)

POLL_S = 0.05


class CheckFailure(AssertionError):
    """The device or plugin does not meet the requirement. Reported as `fail`."""


def expect(condition: Any, message: str) -> None:
    if not condition:
        raise CheckFailure(message)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class TestDevice:
    id: str
    address: str
    kind: str
    capabilities: frozenset[str]
    config: dict[str, Any] = field(default_factory=dict)

    def ref(self) -> DeviceRef:
        return DeviceRef(id=self.id, address=self.address, kind=self.kind, capabilities=self.capabilities,
                         config=dict(self.config))

    def __str__(self) -> str:
        return f"{self.id} ({self.kind} {self.address})"


@dataclass(frozen=True)
class Answer:
    """A command's delivery as the hub recorded it."""

    command_id: str
    state: str
    reason: str | None
    result: dict[str, Any] | None
    latency_s: float

    @property
    def acked(self) -> bool:
        return self.state == "acked"

    @property
    def held(self) -> bool:
        """Held by the hub for a device without priority handling (hub.delivery.arbitration)."""
        return self.state == "queued" and (self.reason or "").startswith("held: ")

    def describe(self) -> str:
        if self.state in TERMINAL_STATES:
            why = f": {self.reason}" if self.reason else ""
            return f"{self.state} after {self.latency_s:.2f} s{why}"
        return f"no answer within {self.latency_s:.2f} s (delivery still {self.state})"


@dataclass(frozen=True)
class RawAnswer:
    """What the raw driver got back: acked | refused (the device's ok=false) | failed (the
    adapter refused synchronously) | no_answer | error (the adapter raised)."""

    kind: str
    reason: str | None = None
    transient: bool = False
    detail: dict[str, Any] | None = None
    latency_s: float = 0.0
    synchronous: bool = False  # answered by the adapter's send() itself, not later through the sink

    @property
    def rejected(self) -> bool:
        return self.kind == "refused" or (self.kind == "failed" and not self.transient)

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        extra = " (transient)" if self.transient else ""
        return f"{self.kind}{extra} after {self.latency_s:.2f} s{why}"


class CaptureSink:
    """A ResultSink that keeps acks for the raw driver to wait on."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._acks: dict[str, tuple[str, Ack]] = {}
        self._count: dict[str, int] = {}  # answers heard per command id (a repeated id is answered again)

    def ack(self, vendor: str, address: str, ack: Ack) -> None:
        with self._cond:
            self._acks.setdefault(ack.command_id, (address, ack))
            self._count[ack.command_id] = self._count.get(ack.command_id, 0) + 1
            self._cond.notify_all()

    def answers(self, command_id: str) -> int:
        with self._cond:
            return self._count.get(command_id, 0)

    def status(self, vendor: str, address: str, status: dict[str, Any]) -> None:
        pass

    def presence(self, vendor: str, address: str, online: bool) -> None:
        pass

    def wait_ack(self, command_id: str, timeout: float, after: int = 0) -> tuple[str, Ack] | None:
        """The first answer to `command_id`, once more than `after` answers to it were heard."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._count.get(command_id, 0) > after, timeout):
                return None
            return self._acks.get(command_id)


class DeviceUnderTest:
    """One certification run's hub, devices, witness and link control. `start()` then `stop()`."""

    def __init__(self, subject: loading.Subject, target: Target, params: dict[str, Resolved], mode: str,
                 simulator: bool, faults: dict[str, set[str]] | None, run_id: str) -> None:
        self.subject = subject
        self.vendor = subject.vendor
        self.target = target
        self.params = params
        self.mode = mode
        self.tolerance = TOLERANCE[mode]
        self.simulator_mode = simulator
        self.faults = faults or {}
        self.run_id = run_id
        self.config_raw = dict(target.config)
        self.devices: list[TestDevice] = []
        self.harness: HubHarness | None = None
        self.sim: Any = None
        self.witness: witness.Witness | None = None
        self.link: witness.LinkControl | None = None
        self._raw: tuple[VendorAdapter, CaptureSink] | None = None
        self._extra_adapters: list[VendorAdapter] = []
        self._workdir: str | None = None
        self._content_seq = 0
        self.notes: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def schema(self) -> Any:
        return self.subject.manifest.config_schema

    def effective_config(self, raw: dict[str, Any] | None = None) -> dict[str, Any]:
        """The configuration as the adapter will see it (schema defaults filled in)."""
        raw = self.config_raw if raw is None else raw
        return self.schema().load(dict(raw)) if self.schema is not None else dict(raw)

    def start(self) -> None:
        self._workdir = tempfile.mkdtemp(prefix=f"hub-conformance-{self.run_id}-")
        # Simulators listen on loopback; real devices (--target) must be at networks and serial
        # ports the operator's own settings allow (device_networks, device_serial_prefixes).
        # A polled plugin's ingest starts after the simulator, so its first poll finds it there; a
        # plugin whose devices push starts listening first, so no first report is missed.
        own = get_settings()
        polled = getattr(self.subject.adapter_cls, "watch", None) is not VendorAdapter.watch
        h = HubHarness(Path(self._workdir), self.vendor, self.config_raw, plugins=self.subject.plugins,
                       retry_backoff_s=(0.1, 0.2), default_ttl_s=120, listen=not polled,
                       device_networks=("127.0.0.1", "::1", *own.device_networks),
                       device_serial_prefixes=tuple(own.device_serial_prefixes))
        # The sweeper's timeout is a suite parameter: a heartbeating device silent for this long
        # is taken offline by the hub itself.
        h.rt.settings.heartbeat_timeout_s = self.param("heartbeat_timeout_s")
        self.harness = h
        h.start()
        for d in self.target.devices:
            h.add_device(d.id, d.address, d.kind, capabilities=d.capabilities, config=d.config)
        with h.rt.db.session() as s:
            rows = {r.id: r for r in s.scalars(select(Device))}
            self.devices = [TestDevice(d.id, d.address, d.kind, frozenset(rows[d.id].capabilities or ()),
                                       dict(d.config)) for d in self.target.devices]
        if self.simulator_mode:
            factory = self.subject.simulator_factory()
            if factory is None:
                raise RuntimeError(f"{self.vendor} registers no simulator (register_simulators); "
                                   "certify real devices with --target instead")
            self.sim = loading.make_simulator(factory, self.effective_config(), [d.ref() for d in self.devices],
                                              self.faults, self.param("heartbeat_interval_s"))
            self.sim.start()
            self.witness = witness.witness_of(self.sim) or self._hooked_witness()
            self.link = witness.link_control_of(self.sim)
        if h.ingest is None:
            h.start_ingest()  # after the devices are registered, so a polling adapter watches them at once
        else:
            h.ingest.refresh_watch()
        if traits_of(self.subject.manifest).priority == "hub":
            h.run_worker()  # plays the hub holds (hub.delivery.arbitration) are enqueued again by the ingest
        if self.target.witness:
            self.witness = witness.from_spec(self.target.witness, self.config_raw, self.devices, "witness")
        if self.target.link_control:
            self.link = witness.from_spec(self.target.link_control, self.config_raw, self.devices, "link_control")

    def _hooked_witness(self) -> witness.Witness | None:
        obj = self.subject.plugins.pm.hook.conformance_witness(vendor=self.vendor, simulator=self.sim)
        if obj is None:
            return None
        if not callable(getattr(obj, "observe", None)):
            raise TypeError(f"{self.vendor}: conformance_witness returned an object without observe(address)")
        return witness.ObserveWitness(obj, "plugin's conformance_witness")

    def stop(self) -> None:
        for adapter in ([self._raw[0]] if self._raw else []) + self._extra_adapters:
            try:
                adapter.close()
            except Exception:  # a broken adapter must not keep the others open
                log.warning("closing a raw adapter failed", exc_info=True)
        self._raw, self._extra_adapters = None, []
        if self.sim is not None:
            try:
                loading.stop_simulator(self.sim)
            except Exception:
                log.warning("stopping the simulator failed", exc_info=True)
            self.sim = None
        if self.harness is not None:
            self.harness.stop()
            self.harness = None
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    # -- parameters -----------------------------------------------------------------------------------
    def param(self, name: str) -> float:
        return self.params[name].value

    def limit(self, name: str) -> float:
        """A parameter as applied: its value times the mode's tolerance."""
        return self.params[name].value * self.tolerance

    def note(self, text: str) -> None:
        self.notes.append(text)

    def devices_with(self, capabilities: frozenset[str] | set[str], kind: str | None = None) -> list[TestDevice]:
        return [d for d in self.devices if capabilities <= d.capabilities and (kind is None or d.kind == kind)]

    # -- commands through the hub ---------------------------------------------------------------------
    def add_content(self, *, short: bool = False, title: str | None = None) -> tuple[str, dict[str, Any]]:
        media = self.target.media
        url = media.short_audio_url if short else media.audio_url
        duration = media.short_audio_duration_s if short else media.audio_duration_s
        if not url:
            missing = "short_audio_url" if short else "audio_url"
            raise CheckFailure(f"precondition: the target gives no media.{missing}")
        self._content_seq += 1
        # Each bulletin gets its own address, so a device that reports the URL it plays shows
        # which bulletin that is (PRIO-01/04 tell the emergency one from the normal one); media
        # servers ignore an unknown query parameter.
        url = f"{url}{'&' if '?' in url else '?'}hub-conformance-clip={self._content_seq}"
        fields: dict[str, Any] = {"uri": url}
        if duration:
            fields["duration_s"] = float(duration)
        title = title or f"Bản tin kiểm tra {self._content_seq}"
        assert self.harness is not None
        cid = self.harness.add_content(title=title, kind="audio_file", media=fields, language="vi")
        return cid, {"id": cid, "uri": url, "duration_s": duration}

    def send(self, verb: str, device: TestDevice, params: dict[str, Any] | None = None, *,
             content_id: str | None = None, priority: str | None = None, wait: bool = True,
             timeout: float | None = None) -> Answer:
        """Send one command through dispatch and the job; wait for the device's answer."""
        assert self.harness is not None
        t0 = time.monotonic()
        sub = self.harness.send(verb, [device.id], params or {}, content_id=content_id, priority=priority)
        cid = sub.command.id
        if not wait:
            o = self.harness.outcomes(cid).get(device.id)
            return Answer(cid, o.state if o else "unknown", o.reason if o else None, o.result if o else None,
                          time.monotonic() - t0)
        return self.answer(cid, device, t0, timeout)

    def answer(self, command_id: str, device: TestDevice, t0: float, timeout: float | None = None) -> Answer:
        assert self.harness is not None
        deadline = t0 + (timeout if timeout is not None else self.limit("ack_timeout_s"))
        while True:
            o = self.harness.outcomes(command_id).get(device.id)
            now = time.monotonic()
            held = o is not None and o.state == "queued" and (o.reason or "").startswith("held: ")
            if (o is not None and (o.state in TERMINAL_STATES or held)) or now >= deadline:
                if o is None:
                    return Answer(command_id, "unknown", "no delivery row", None, now - t0)
                return Answer(command_id, o.state, o.reason, o.result, now - t0)
            time.sleep(POLL_S)

    def expect_acked(self, answer: Answer, what: str) -> None:
        expect(answer.acked, f"{what}: expected the device to acknowledge it, got {answer.describe()}")

    def play(self, device: TestDevice, priority: str, *, short: bool = False,
             wait: bool = True) -> tuple[dict[str, Any], Answer]:
        cid, content = self.add_content(short=short, title=f"Bản tin {priority} kiểm tra")
        return content, self.send("play", device, {}, content_id=cid, priority=priority, wait=wait)

    def reset(self, device: TestDevice) -> None:
        """Bring a device back to a known state before a check: only what its observed state
        calls for, and without waiting — a faulty device's silence must not cost every later
        check a timeout."""
        seen, _ = self.observe(device)
        caps = device.capabilities
        if "power.switch" in caps and (seen.get("power") is False or seen.get("activity") == "off"):
            self.send("power", device, {"on": True}, wait=False)
        if "audio.stop" in caps and seen.get("activity") in ("playing", "relaying"):
            self.send("stop", device, wait=False)
        if "led.text" in caps and (seen.get("led_text") or seen.get("activity") == "showing"):
            self.send("led_clear", device, wait=False)

    # -- status as the hub knows it -------------------------------------------------------------------
    def status(self, device: TestDevice) -> dict[str, Any] | None:
        assert self.harness is not None
        with self.harness.rt.db.session() as s:
            st = s.get(DeviceStatus, device.id)
            if st is None:
                return None
            return {c: getattr(st, c) for c in STATUS_FIELDS}

    def wait_status(self, device: TestDevice, predicate: Callable[[dict[str, Any]], bool],
                    timeout: float) -> tuple[bool, dict[str, Any] | None]:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(device)
            if st is not None and predicate(st):
                return True, st
            if time.monotonic() >= deadline:
                return False, st
            time.sleep(POLL_S)

    # -- what the device really does ---------------------------------------------------------------------
    def observe(self, device: TestDevice) -> tuple[dict[str, Any], str]:
        """The witness's view when there is one, else what the device itself reports."""
        if self.witness is not None:
            return self.witness.observe(device.address), f"witness ({self.witness.label})"
        st = self.status(device) or {}
        return {k: st.get(k) for k in witness.OBSERVED_KEYS}, "device-reported status (no witness)"

    def wait_observed(self, device: TestDevice, predicate: Callable[[dict[str, Any]], bool], timeout: float,
                      give_up: Callable[[], bool] | None = None) -> tuple[bool, dict[str, Any], str]:
        """Poll until `predicate` holds, `timeout` passes, or `give_up()` says waiting is pointless."""
        deadline = time.monotonic() + timeout
        while True:
            seen, label = self.observe(device)
            if predicate(seen):
                return True, seen, label
            if time.monotonic() >= deadline or (give_up is not None and give_up()):
                return False, seen, label
            time.sleep(POLL_S)

    def refused(self, command_id: str, device: TestDevice) -> bool:
        """Whether the delivery already ended without an ack (so its effect will never come)."""
        assert self.harness is not None
        o = self.harness.outcomes(command_id).get(device.id)
        return o is not None and o.state in TERMINAL_STATES and o.state != "acked"

    def hold_observed(self, device: TestDevice, predicate: Callable[[dict[str, Any]], bool],
                      duration: float) -> tuple[bool, dict[str, Any], str]:
        """Whether `predicate` stays true for `duration` (False at the first moment it does not)."""
        deadline = time.monotonic() + duration
        while True:
            seen, label = self.observe(device)
            if not predicate(seen):
                return False, seen, label
            if time.monotonic() >= deadline:
                return True, seen, label
            time.sleep(POLL_S)

    # -- the raw driver ----------------------------------------------------------------------------------
    def new_adapter(self, raw_config: dict[str, Any]) -> VendorAdapter:
        """An adapter built the way the hub builds one (hub.runtime.Runtime.make_adapter)."""
        cls = self.subject.adapter_cls
        adapter = cls(self.effective_config(raw_config))
        if self.harness is not None:  # where devices may be: as the run's hub says (hub.addresses)
            adapter.address_policy = self.harness.rt.address_policy()
        return adapter

    @contextmanager
    def listening_adapter(self, raw_config: dict[str, Any]) -> Iterator[tuple[VendorAdapter, CaptureSink]]:
        adapter = self.new_adapter(raw_config)
        sink = CaptureSink()
        try:
            adapter.open()
            adapter.watch([d.ref() for d in self.devices])
            adapter.listen(sink)
            adapter.wait_ready(self.limit("ack_timeout_s"))
            yield adapter, sink
        finally:
            try:
                adapter.close()
            except Exception:
                log.warning("closing an adapter failed", exc_info=True)

    def raw(self) -> tuple[VendorAdapter, CaptureSink]:
        if self._raw is None:
            adapter = self.new_adapter(self.config_raw)
            sink = CaptureSink()
            adapter.open()
            adapter.watch([d.ref() for d in self.devices])
            adapter.listen(sink)
            adapter.wait_ready(self.limit("ack_timeout_s"))
            self._raw = (adapter, sink)
        return self._raw

    def raw_send(self, device: TestDevice, verb: str, params: dict[str, Any] | None = None, *,
                 priority: str = "normal", expires_at: datetime | None = None,
                 content: dict[str, Any] | None = None,
                 via: tuple[VendorAdapter, CaptureSink] | None = None, command_id: str | None = None) -> RawAnswer:
        """Send one envelope straight through an adapter and wait for the device's answer (to this
        sending: with a `command_id` already used, for an answer beyond those already heard)."""
        adapter, sink = via or self.raw()
        heard = sink.answers(command_id) if command_id else 0
        env = Envelope(command_id=command_id or f"conf-{uuid.uuid4().hex[:16]}", verb=verb, params=dict(params or {}),
                       priority=priority, expires_at=expires_at or utcnow() + timedelta(seconds=120),
                       content=content)
        t0 = time.monotonic()
        try:
            results = adapter.send([Outgoing(device.ref(), env)])
        except TransientError as exc:
            return RawAnswer("error", str(exc), True, latency_s=time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - the adapter's own failure is the finding
            return RawAnswer("error", f"{type(exc).__name__}: {exc}", latency_s=time.monotonic() - t0)
        r = next((r for r in results or [] if r.device_id == device.id), None)
        if r is None:
            return RawAnswer("error", "the adapter returned no result for the device", latency_s=time.monotonic() - t0)
        if r.outcome is Outcome.ACKED:
            return RawAnswer("acked", r.reason, detail=r.detail, latency_s=time.monotonic() - t0, synchronous=True)
        if r.outcome is Outcome.FAILED:
            return RawAnswer("failed", r.reason, r.transient, r.detail, time.monotonic() - t0, synchronous=True)
        got = sink.wait_ack(env.command_id, self.limit("ack_timeout_s"), after=heard)
        latency = time.monotonic() - t0
        if got is None:
            return RawAnswer("no_answer", None, latency_s=latency)
        _address, ack = got
        return RawAnswer("acked" if ack.ok else "refused", ack.reason, detail=ack.detail, latency_s=latency)

    # -- status observation for heartbeats -------------------------------------------------------------
    def heard_times(self, devices: list[TestDevice], window: float) -> dict[str, list[datetime]]:
        """When the hub heard from each device (status or presence: `last_seen_at`, what the
        hub's health sweeper judges silence by) during `window`."""
        seen: dict[str, list[datetime]] = {d.id: [] for d in devices}
        last: dict[str, Any] = {d.id: (self.status(d) or {}).get("last_seen_at") for d in devices}
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            for d in devices:
                at = (self.status(d) or {}).get("last_seen_at")
                if at is not None and at != last[d.id]:
                    seen[d.id].append(at)
                    last[d.id] = at
            time.sleep(POLL_S)
        return seen

    @property
    def heartbeat_slack(self) -> float:
        return MEASUREMENT_SLACK_S
