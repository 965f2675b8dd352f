"""The adapter: one POST per batch, confirmation by reading the gateway's status list back."""
from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hub.schemas.status import DeviceStatusSchema
from hub.units import from_vendor_scale, to_vendor_scale
from hub.vendor import (DeviceRef, Health, Manifest, Outcome, Outgoing, Result, ResultSink, StatusParseError,
                        TransientError, VendorAdapter)
from hub.vendor_traits import Traits

from hub_batch_gateway import __version__

VENDOR = "batch_gateway"
VOLUME = (1, 15)
log = logging.getLogger(__name__)


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.Url(required=True, require_tld=False, metadata={"description": "The gateway, http://host:port"})
    poll_interval_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.05))
    timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.1))


class BatchGatewayAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR, title="Batch HTTP loudspeaker gateway (test plugin)", version=__version__,
        protocols=("http-json",), device_kinds=("speaker",),
        capabilities=frozenset({"audio.play_url", "audio.stop", "audio.volume", "status.heartbeat"}),
        config_schema=ConfigSchema,
        traits=Traits(volume_scale=VOLUME, priority="hub", confirmation="readback", status_list=True))

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._devices: list[DeviceRef] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._present: dict[str, bool] = {}

    # -- HTTP ---------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.config["url"].rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.config["timeout_s"]) as resp:  # noqa: S310 - loopback/LAN
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"gateway {self.config['url']} unreachable: {exc}") from exc

    # -- commands -----------------------------------------------------------------------------------
    def _command(self, o: Outgoing) -> dict[str, Any] | str:
        env, imei = o.envelope, o.device.address
        if env.expires_at <= datetime.now(timezone.utc):
            return "expired"
        if env.verb == "play":
            url = (env.content or {}).get("media_uri")
            return {"imei": imei, "op": "play", "url": url} if url else "bad params: play needs content with media"
        if env.verb == "stop":
            return {"imei": imei, "op": "stop"}
        if env.verb == "set_volume":
            level = env.params.get("level")
            if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
                return f"bad params: level {level!r} is not 0–100"
            return {"imei": imei, "op": "volume", "vol": to_vendor_scale(level, *VOLUME)}
        return f"unsupported verb {env.verb}"

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        out, commands, ids = [], [], []
        for o in batch:
            c = self._command(o)
            if isinstance(c, str):
                out.append(Result(o.device.id, Outcome.FAILED, reason=c))
            else:
                commands.append(c)
                ids.append(o.device.id)
        if commands:
            try:
                self._request("POST", "/commands", {"commands": commands})
            except urllib.error.HTTPError as exc:
                transient = exc.code >= 500
                return out + [Result(i, Outcome.FAILED, reason=f"gateway answered HTTP {exc.code}",
                                     transient=transient) for i in ids]
            # No per-device answer: the hub confirms each by reading the status list back.
            out += [Result(i, Outcome.PENDING) for i in ids]
        return out

    # -- status -------------------------------------------------------------------------------------
    def watch(self, devices: Sequence[DeviceRef]) -> None:
        self._devices = list(devices)

    def listen(self, sink: ResultSink) -> None:
        self._thread = threading.Thread(target=self._poll, args=(sink,), name=f"{VENDOR}-poller", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _poll(self, sink: ResultSink) -> None:
        while not self._stop.is_set():
            try:
                listing = self._request("GET", "/status")
                entries = {str(e.get("imei")): e for e in listing.get("devices", []) if isinstance(e, dict)}
                for d in self._devices:
                    entry = entries.get(d.address)
                    self._presence(sink, d.address, entry is not None)
                    if entry is not None:
                        payload = json.dumps({**entry, "time": listing.get("time")}).encode()
                        try:
                            sink.status(VENDOR, d.address, self.parse_status(d.address, payload))
                        except StatusParseError as exc:
                            log.warning("%s: %s", d.address, exc)
            except (TransientError, urllib.error.HTTPError, ValueError, AttributeError) as exc:
                log.warning("status poll failed: %s", exc)
                for d in self._devices:
                    self._presence(sink, d.address, False)
            self._ready.set()
            self._stop.wait(self.config["poll_interval_s"])

    def _presence(self, sink: ResultSink, address: str, online: bool) -> None:
        if self._present.get(address) != online:
            self._present[address] = online
            sink.presence(VENDOR, address, online)

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        try:
            e = json.loads(payload)
            state, vol = e["state"], e["vol"]
            # The speakers have no clock: the gateway's time of the list is the report's time.
            at = datetime.fromisoformat(e["time"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise StatusParseError(f"not a gateway status entry: {exc}") from None
        if state not in ("idle", "playing") or isinstance(vol, bool) or not isinstance(vol, int) or at.tzinfo is None:
            raise StatusParseError(f"not a gateway status entry: state {state!r}, vol {vol!r}")
        try:
            volume = from_vendor_scale(vol, *VOLUME)
        except ValueError as exc:
            raise StatusParseError(str(exc)) from None
        try:
            return DeviceStatusSchema().load({"online": True, "activity": state, "volume": volume,
                                              "source": e.get("url") if state == "playing" else None,
                                              "reported_at": at.isoformat()})
        except ValidationError as exc:
            raise StatusParseError(f"not a gateway status entry: {exc.messages}") from None

    def health(self) -> Health:
        try:
            self._request("GET", "/status")
        except (TransientError, urllib.error.HTTPError) as exc:
            return Health(False, str(exc))
        return Health(True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
