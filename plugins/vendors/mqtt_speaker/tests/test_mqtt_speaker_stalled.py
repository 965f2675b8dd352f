"""Failure paths Mosquitto cannot be made to produce: a broker that stops answering.

`StalledBroker` is not an MQTT implementation: it is a TCP peer that at most sends one CONNACK
and then swallows everything, like a broker wedged under load. Every other test uses the real
broker."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from hub.vendor import Outcome, TransientError

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter
from mqtt_speaker_helpers import envelope, outgoing

CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


class StalledBroker:
    def __init__(self, connack: bool) -> None:
        self.connack = connack
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.received = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.2)
            self._conns.append(conn)
            threading.Thread(target=self._swallow, args=(conn,), daemon=True).start()

    def _swallow(self, conn: socket.socket) -> None:
        answered = False
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += len(data)
            if self.connack and not answered:  # the first bytes are the CONNECT packet
                conn.sendall(CONNACK_ACCEPTED)
                answered = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self.server.close()


@pytest.fixture
def stalled() -> Iterator[Callable[[bool], StalledBroker]]:
    made: list[StalledBroker] = []

    def make(connack: bool) -> StalledBroker:
        made.append(StalledBroker(connack))
        return made[-1]

    yield make
    for b in made:
        b.close()


def test_open_gives_up_without_connack(stalled: Callable[[bool], StalledBroker]) -> None:
    broker = stalled(False)
    adapter = MqttSpeakerAdapter({"port": broker.port, "connect_timeout_s": 0.5})
    began = time.monotonic()
    try:
        with pytest.raises(TransientError, match=rf"127\.0\.0\.1:{broker.port} unreachable: no CONNACK within 0\.5s"):
            adapter.open()
    finally:
        adapter.close()
    assert time.monotonic() - began < 3


def test_unconfirmed_publishes_fail_transiently(stalled: Callable[[bool], StalledBroker]) -> None:
    broker = stalled(True)
    adapter = MqttSpeakerAdapter({"port": broker.port, "publish_timeout_s": 0.5})
    adapter.open()
    try:
        began = time.monotonic()
        results = adapter.send([outgoing(f"S{i}", envelope("stop")) for i in range(20)])
        took = time.monotonic() - began
    finally:
        adapter.close()
    assert len(results) == 20
    assert all(r.outcome is Outcome.FAILED and r.transient for r in results)
    assert {r.reason for r in results} == {"broker did not confirm publish within 0.5s"}
    assert took < 1.5  # one shared deadline for the whole batch, not 0.5 s per item
    assert broker.received > 20 * 40  # the publishes did go out
