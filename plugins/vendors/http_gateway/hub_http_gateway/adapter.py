"""The hub side: batches commands into gateway requests and polls the gateway for status."""
from __future__ import annotations

import ipaddress
import logging
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from hub.addresses import AddressError, IdentifierAddress
from hub.vendor import Ack, Envelope, Health, Manifest, Outcome, Outgoing, Result, ResultSink, StatusParseError, \
    VendorAdapter

from hub_http_gateway import __version__, parsing, protocol
from hub_http_gateway.client import GatewayClient, GatewayError
from hub_http_gateway.packets import Packet, UnsupportedCommand, expires_epoch, packet_for
from hub_http_gateway.poller import StatusPoller

log = logging.getLogger(__name__)

VENDOR = "http_gateway"
NOT_CONFIGURED = f"{VENDOR} is not configured: set base_url and api_key in its plugin settings"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpGatewayConfigSchema(Schema):
    class Meta:
        unknown = RAISE  # a misspelt key should fail loudly, not silently use a default

    base_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
                          metadata={"description": "Gateway root, e.g. https://gw.vendor.vn; endpoints are "
                                                   "<base_url>/api/v1/..."})
    api_key = fields.Str(load_default=None, allow_none=True, load_only=True,
                         validate=validate.Length(min=1, max=512),
                         metadata={"description": "Bearer API key; required with base_url (there is no default)"})
    timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.05, max=300),
                             metadata={"description": "Bounds each connect and each read of one request"})
    batch_limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=protocol.GATEWAY_MAX_DEVICES),
                             metadata={"description": "Devices per gateway request"})
    poll_interval_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.05, max=3600),
                                   metadata={"description": "Seconds between status polls"})
    # At most 60 s by default: the hub marks a device offline after heartbeat_timeout_s (180 s
    # by default) without a report, and a quiet device's entry may not change between resyncs.
    resync_interval_s = fields.Float(load_default=60.0, validate=validate.Range(min=0.05, max=86400),
                                     metadata={"description": "Polls report changes only; this often they "
                                                              "report every device's state and presence (keep it "
                                                              "well under the hub's heartbeat_timeout_s)"})
    verify_tls = fields.Bool(load_default=True, metadata={"description": "Verify the gateway's certificate (https)"})
    ca_file = fields.Str(load_default=None, allow_none=True,
                         metadata={"description": "CA bundle for https; the system store when absent"})
    allow_insecure_http = fields.Bool(load_default=False,
                                      metadata={"description": "Allow plain http to a non-loopback gateway "
                                                               "(the API key then crosses the network in clear)"})

    @validates("api_key")
    def _key_ok(self, value: str | None, **_: Any) -> None:
        # Never echo the value: error messages end up in logs.
        if value is not None and (not value.isprintable() or any(c.isspace() for c in value)):
            raise ValidationError("must not contain spaces or control characters")

    @validates("base_url")
    def _url_ok(self, value: str | None, **_: Any) -> None:
        if value is None:
            return
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ValidationError("must not carry credentials; use api_key")
        if parts.query or parts.fragment:
            raise ValidationError("must not have a query or fragment")

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        url, key = data.get("base_url"), data.get("api_key")
        if url and not key:
            raise ValidationError("required with base_url: the gateway has no default credentials",
                                  field_name="api_key")
        if key and not url:
            raise ValidationError("required with api_key", field_name="base_url")
        if url:
            parts = urlsplit(url)
            if parts.scheme == "http" and not is_loopback(parts.hostname or "") \
                    and not data.get("allow_insecure_http"):
                raise ValidationError("plain http to a non-loopback gateway would send the API key in clear; "
                                      "use https or set allow_insecure_http", field_name="base_url")


class HttpGatewayAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR,
        title="IP loudspeaker clusters behind a vendor HTTP gateway (JSON batches)",
        version=__version__,
        protocols=("http-json-gateway/1",),
        device_kinds=("speaker",),
        capabilities=frozenset({
            "audio.play_url", "audio.stop", "audio.volume", "audio.stream_relay",
            "status.heartbeat", "status.signal", "security.auth", "security.tls",
        }),
        config_schema=HttpGatewayConfigSchema,
        # the device's id at the gateway: the hub never connects to it; base_url's host and port
        # must be in the province's device_networks (checked before every request)
        address=IdentifierAddress(max_length=protocol.MAX_DEVICE_ID_LEN,
                                  description="the device's id at the vendor gateway"),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        try:
            self.settings: dict[str, Any] = HttpGatewayConfigSchema().load(self.config)
        except ValidationError as err:
            raise ValueError(f"{VENDOR} config: {err.messages}") from None
        self._poller: StatusPoller | None = None
        # Built now so that a bad TLS setting fails when the hub loads the plugin, not mid-send.
        self._sender: GatewayClient | None = self._client() if self.configured else None

    @property
    def configured(self) -> bool:
        return bool(self.settings["base_url"] and self.settings["api_key"])

    def _client(self) -> GatewayClient:
        s = self.settings
        try:
            return GatewayClient(s["base_url"], s["api_key"], s["timeout_s"], s["verify_tls"], s["ca_file"])
        except OSError as exc:  # an unreadable ca_file
            raise ValueError(f"{VENDOR} config: ca_file: {exc}") from None

    # -- lifecycle --------------------------------------------------------------------------------

    def open(self) -> None:
        """Nothing to do: HTTP needs no standing connection (urllib opens one per request)."""

    def close(self) -> None:
        poller, self._poller = self._poller, None
        # Bounded: a hanging gateway must not hold up the hub's shutdown for a whole timeout_s.
        if poller is not None and not poller.stop(min(self.settings["timeout_s"] + 1, 5.0)):
            log.warning("%s: status poller still waiting on the gateway; it reports nothing more and ends "
                        "with its request", VENDOR)

    def gateway_refused(self) -> str | None:
        """Why base_url may not be reached (hub.addresses: hosts and ports the province allows,
        never the hub's own services), or None. Checked before any request, not only at load."""
        parts = urlsplit(self.settings["base_url"] or "")
        try:
            if parts.scheme not in ("http", "https") or parts.username or parts.password or not parts.hostname:
                raise AddressError("scheme", "base_url must be an http(s) URL without credentials")
            self.check_endpoint(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), "base_url")
        except (AddressError, ValueError) as exc:
            return f"gateway refused: {exc}"
        return None

    def health(self) -> Health:
        if not self.configured:
            return Health(False, NOT_CONFIGURED)
        if (refused := self.gateway_refused()) is not None:
            return Health(False, refused)
        try:
            self._client().ping()
        except GatewayError as exc:
            return Health(False, exc.reason)
        return Health(True, f"gateway {self.settings['base_url']} answers and accepts the API key")

    # -- sending ----------------------------------------------------------------------------------

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        sender = self._sender
        if sender is None:
            return [Result(o.device.id, Outcome.FAILED, reason=NOT_CONFIGURED) for o in batch]
        if (refused := self.gateway_refused()) is not None:
            return [Result(o.device.id, Outcome.FAILED, reason=refused) for o in batch]
        results: list[Result] = []
        groups = self._group(batch, results)
        limit = self.settings["batch_limit"]
        blocked: GatewayError | None = None
        for env, packet, items in groups:
            for i in range(0, len(items), limit):
                chunk = items[i:i + limit]
                if blocked is not None:
                    results += [Result(o.device.id, Outcome.FAILED, transient=blocked.transient,
                                       reason=f"{blocked.reason} (not sent after an earlier request of "
                                              "this batch failed so)") for o in chunk]
                    continue
                try:
                    results += self._request(sender, env, packet, chunk)
                except GatewayError as exc:
                    results += [Result(o.device.id, Outcome.FAILED, reason=exc.reason, transient=exc.transient)
                                for o in chunk]
                    if exc.blocks_batch:
                        blocked = exc
        return results

    def _group(self, batch: Sequence[Outgoing],
               results: list[Result]) -> list[tuple[Envelope, Packet, list[Outgoing]]]:
        """Items by the request they can share; items that cannot be sent go straight to `results`."""
        groups: dict[tuple[Any, ...], tuple[Envelope, Packet, list[Outgoing]]] = {}
        built: dict[int, Packet | str] = {}  # envelope objects are shared by a job's items
        for item in batch:
            problem = protocol.device_id_problem(item.device.address)
            env = item.envelope
            if id(env) not in built:
                try:
                    built[id(env)] = packet_for(env)
                except (UnsupportedCommand, KeyError, TypeError, ValueError) as exc:
                    built[id(env)] = f"cannot build the gateway packet: {exc}"
            packet = built[id(env)]
            if isinstance(packet, str) or problem:
                results.append(Result(item.device.id, Outcome.FAILED, reason=problem or str(packet)))
                continue
            key = (env.command_id, env.priority, expires_epoch(env), packet.packet_type,
                   protocol.encode(packet.data))
            groups.setdefault(key, (env, packet, []))[2].append(item)
        return list(groups.values())

    def _request(self, sender: GatewayClient, env: Envelope, packet: Packet, chunk: list[Outgoing]) -> list[Result]:
        request_id = uuid.uuid4().hex
        body = sender.post_batch(protocol.batch_request(
            request_id, env.command_id, packet.packet_type, [o.device.address for o in chunk], packet.data,
            env.priority, expires_epoch(env)))
        answers = body.get("results")
        if not isinstance(answers, list):
            raise GatewayError(f"gateway answer to request {request_id} has no results list", transient=True)
        by_address: dict[str, Any] = {}
        for raw in answers:
            if isinstance(raw, dict) and isinstance(raw.get("device"), str):
                by_address.setdefault(raw["device"], raw)
        return [self._result(o, by_address.get(o.device.address), env.command_id) for o in chunk]

    def _result(self, item: Outgoing, raw: Any, command_id: str) -> Result:
        dev = item.device
        if raw is None:
            return Result(dev.id, Outcome.FAILED, transient=True,
                          reason=f"gateway returned no result for device {dev.address}")
        try:
            ack = parsing.ack_from_result(dev.address, raw, command_id)
        except StatusParseError as exc:
            if isinstance(raw, dict) and protocol.is_int(raw.get("code")) and raw["code"] == protocol.Code.OK:
                # The device did act; only its read-back is unreadable.
                return Result(dev.id, Outcome.ACKED, detail={"unreadable_state": str(exc)})
            return Result(dev.id, Outcome.FAILED, transient=True, reason=str(exc))
        if ack.command_id != command_id:
            return Result(dev.id, Outcome.FAILED, transient=True,
                          reason=f"gateway answered for command {ack.command_id}, not {command_id}")
        if ack.ok:
            return Result(dev.id, Outcome.ACKED, detail=ack.detail)
        return Result(dev.id, Outcome.FAILED, reason=ack.reason)

    # -- listening --------------------------------------------------------------------------------

    def listen(self, sink: ResultSink) -> None:
        if not self.configured:
            log.info("%s", NOT_CONFIGURED + "; not polling")
            return
        if (refused := self.gateway_refused()) is not None:
            log.error("%s: %s; not polling", VENDOR, refused)
            return
        if self._poller is None:
            s = self.settings
            self._poller = StatusPoller(self._client(), sink, VENDOR, s["poll_interval_s"], parsing.status_from_object,
                                        resync_s=s["resync_interval_s"])
            self._poller.start()

    def wait_ready(self, timeout: float) -> bool:
        poller = self._poller
        return poller is None or poller.wait_first(timeout)

    # -- parsing ----------------------------------------------------------------------------------

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        return parsing.parse_status(address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        return parsing.parse_ack(address, payload)
