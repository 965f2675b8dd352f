"""The hub side: one JSON-RPC control connection to snapserver per adapter, for commands and,
once `listen()` is called, for notifications and periodic full status."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from hub.addresses import AddressError, IdentifierAddress
from hub.vendor import (Ack, Health, Manifest, Outgoing, Result, ResultSink, StatusParseError, TransientError,
                        VendorAdapter)

from hub_snapcast import __version__, commands
from hub_snapcast.config import SnapcastConfigSchema, load_config
from hub_snapcast.listener import Listener
from hub_snapcast.parsing import Routing, client_status, parse_status
from hub_snapcast.rpc import ConnectionLost, Params, Reply, RpcConnection
from hub_snapcast.state import Change, ProtocolError, ServerState

log = logging.getLogger(__name__)

VENDOR = "snapcast"
MAX_CALLS_PER_BATCH = 500  # requests per JSON-RPC batch array, so one line stays a few hundred kB


class SnapcastAdapter(VendorAdapter):
    manifest = Manifest(
        name=VENDOR,
        title="Snapcast multi-room audio (snapserver JSON-RPC control)",
        version=__version__,
        protocols=("snapcast-jsonrpc-2.0",),
        device_kinds=("speaker",),
        # No audio.play_url: play tunes a group to a snapserver stream, it never fetches a file.
        # No security.*: snapserver 0.26's control port has neither TLS nor authentication.
        capabilities=frozenset({"audio.stream_relay", "audio.volume", "audio.stop", "status.heartbeat"}),
        config_schema=SnapcastConfigSchema,
        # a snapserver client id: the hub connects only to host:control_port, which must be in
        # the province's device_networks (checked before every connection)
        address=IdentifierAddress(description="the snapserver client id (snapclient --hostID)"),
    )

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.settings: dict[str, Any] = load_config(self.config)
        self.routing = Routing(self.settings["streams"], self.settings["relay_streams"])
        self._conn: RpcConnection | None = None
        self._conn_lock = threading.Lock()
        self._state = ServerState()
        self._state_lock = threading.Lock()
        self._sink: ResultSink | None = None
        self._listener: Listener | None = None
        self._last_error: str | None = None
        self._opened = False
        self._closed = False

    @property
    def where(self) -> str:
        return f"{self.settings['host']}:{self.settings['control_port']}"

    # -- connection ----------------------------------------------------------------------

    def open(self) -> None:
        self._opened = True
        try:
            self._connection()
        except TransientError as exc:
            # Not fatal: send() reconnects on demand and the listener retries with backoff, so
            # an ingest process may start before snapserver does.
            log.warning("%s; will retry", exc)

    def close(self) -> None:
        self._closed = True
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # fails any waiting request at once, so the listener stops promptly
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop(timeout=2 * self.settings["timeout_s"] + 1)

    def health(self) -> Health:
        conn = self._conn
        if conn is not None and conn.alive:
            return Health(True, f"connected to snapserver {self.where}")
        why = self._last_error or ("not opened" if not self._opened else "not connected")
        return Health(False, f"not connected to snapserver {self.where}: {why}")

    def _connection(self) -> RpcConnection:
        with self._conn_lock:
            if self._closed:
                raise TransientError("snapcast adapter is closed")
            conn = self._conn
            if conn is not None and conn.alive:
                return conn
            try:
                self.check_endpoint(self.settings["host"], self.settings["control_port"], "snapcast host:control_port")
            except AddressError as exc:
                self._last_error = f"refused: {exc}"
                raise TransientError(f"snapserver {self.where} {self._last_error}") from None
            conn = RpcConnection(self.settings["host"], self.settings["control_port"], self.settings["timeout_s"],
                                 on_notification=self._on_notification, on_lost=self._on_lost)
            try:
                conn.connect()
            except OSError as exc:
                self._last_error = str(exc)
                raise TransientError(f"snapserver {self.where} unreachable: {exc}") from exc
            self._conn = conn
            self._last_error = None
            return conn

    def _drop(self, conn: RpcConnection, why: str) -> None:
        # A server that stopped answering may still answer late; a fresh connection cannot be
        # confused by that, and the listener must reconnect rather than wait for its next poll.
        self._last_error = why
        with self._conn_lock:
            if self._conn is conn:
                self._conn = None
        conn.close()
        if self._listener is not None:
            self._listener.wake()

    def _request(self, calls: Sequence[tuple[str, Params]]) -> list[Reply]:
        """Replies to `calls`, sent as JSON-RPC batches; TransientError on any link trouble."""
        conn = self._connection()
        replies: list[Reply] = []
        try:
            for i in range(0, len(calls), MAX_CALLS_PER_BATCH):
                replies += conn.batch(calls[i:i + MAX_CALLS_PER_BATCH])
        except TimeoutError as exc:
            self._drop(conn, str(exc))
            raise TransientError(str(exc)) from exc
        except ConnectionLost as exc:
            self._last_error = str(exc)
            raise TransientError(str(exc)) from exc
        return replies

    def refresh(self) -> Change:
        """Read Server.GetStatus into the adapter's view of snapserver."""
        [reply] = self._request([("Server.GetStatus", None)])
        if reply.error is not None:
            raise TransientError(f"snapserver {self.where} refused Server.GetStatus: {reply.error}")
        try:
            server = reply.result["server"] if isinstance(reply.result, dict) else None
            with self._state_lock:
                return self._state.replace(server)
        except ProtocolError as exc:
            raise TransientError(f"snapserver {self.where} sent a status the adapter cannot read: {exc}") from exc

    # -- sending ---------------------------------------------------------------------------

    def send(self, batch: Sequence[Outgoing]) -> list[Result]:
        if not batch:
            return []
        # Fresh every batch: which group a client is in decides what play and stop touch.
        seen = self.refresh()
        self._publish(Change(presence=seen.presence))
        with self._state_lock:
            p = commands.plan(batch, self._state, self.routing)
        replies = self._request(p.calls) if p.calls else []
        # snapserver notifies only the *other* control connections of a change, so what this
        # connection changed reaches our own listener (if any) from here.
        change = Change()
        with self._state_lock:
            for r in replies:
                if r.ok and r.params is not None:
                    got = self._state.apply_reply(r.method, r.params, r.result)
                    change.clients |= got.clients
        self._publish(change)
        return p.results(replies)

    # -- listening -----------------------------------------------------------------------

    def listen(self, sink: ResultSink) -> None:
        self._sink = sink
        if self._listener is None and not self._closed:
            self._listener = Listener(self._refresh_and_publish, self.settings["poll_interval_s"],
                                      self.settings["reconnect_max_s"], name=f"snapcast-listener-{self.where}")
            self._listener.start()

    def wait_ready(self, timeout: float) -> bool:
        listener = self._listener
        return True if listener is None else listener.ready.wait(timeout)

    def _refresh_and_publish(self) -> None:
        self._publish(self.refresh())

    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        try:
            with self._state_lock:
                change = self._state.apply(method, params)
        except ProtocolError as exc:
            log.warning("snapcast: dropped %s notification: %s", method, exc)
            change = Change(stale=True)
        if change.stale and self._listener is not None:
            self._listener.wake()
        self._publish(change)

    def _on_lost(self, why: str) -> None:
        self._last_error = why
        log.warning("snapcast: control connection to %s lost: %s", self.where, why)
        if self._listener is not None:
            self._listener.wake()

    def _publish(self, change: Change) -> None:
        sink = self._sink
        if sink is None or not (change.clients or change.presence):
            return
        now = datetime.now(timezone.utc)
        statuses = []
        with self._state_lock:
            for cid in sorted(change.clients):
                client = self._state.client(cid)
                if client is None:
                    continue
                try:
                    statuses.append((cid, client_status(cid, client, self._state.group_of_client(cid),
                                                        self._state.stream_of_client(cid), self.routing, now)))
                except StatusParseError as exc:
                    log.warning("snapcast: %s", exc)
        try:
            for cid, online in change.presence.items():
                sink.presence(VENDOR, cid, online)
            for cid, status in statuses:
                sink.status(VENDOR, cid, status)
        except Exception:  # noqa: BLE001 - a faulty sink must not kill the reader or listener
            log.exception("snapcast: the sink failed")

    # -- parsing ---------------------------------------------------------------------------

    def parse_status(self, address: str, payload: bytes) -> dict[str, Any]:
        return parse_status(address, payload)

    def parse_ack(self, address: str, payload: bytes) -> Ack:
        # snapserver answers every request synchronously; there is no ack payload to parse.
        raise StatusParseError(f"snapcast has no asynchronous acks (from {address})")
