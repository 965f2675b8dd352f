"""The JSON-RPC connection against a real snapserver 0.26: batches, errors, notifications."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from hub_snapcast.lab import free_port
from hub_snapcast.rpc import ConnectionLost, RpcConnection, RpcError


class Notes:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        with self.cond:
            self.got.append((method, params))
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.got) >= n, timeout)


def test_a_batch_answers_each_request_in_order_errors_included(make_lab) -> None:
    lab = make_lab(["spk-a", "spk-b"])
    conn = RpcConnection("127.0.0.1", lab.control_port, 5.0)
    conn.connect()
    try:
        replies = conn.batch([("Client.SetVolume", {"id": "spk-a", "volume": {"percent": 21}}),
                              ("Client.SetVolume", {"id": "nobody", "volume": {"percent": 21}}),
                              ("Client.SetVolume", {"id": "spk-b", "volume": {"percent": 22}})])
        assert [r.ok for r in replies] == [True, False, True]
        assert replies[0].result == {"volume": {"muted": False, "percent": 21}}
        assert replies[2].result["volume"]["percent"] == 22
        err = replies[1].error
        assert err is not None and err.detail == "Client not found" and err.code == -32603
        with pytest.raises(RpcError, match="Method not found"):
            conn.call("Client.Explode", {"id": "spk-a"})
    finally:
        conn.close()
    assert not conn.alive
    with pytest.raises(ConnectionLost):
        conn.call("Server.GetStatus")


def test_notifications_of_others_arrive_batch_notifications_included(make_lab) -> None:
    lab = make_lab(["spk-a", "spk-b"])
    notes = Notes()
    listener = RpcConnection("127.0.0.1", lab.control_port, 5.0, on_notification=notes)
    sender = RpcConnection("127.0.0.1", lab.control_port, 5.0, on_notification=notes)
    listener.connect()
    sender.connect()
    try:
        # snapserver answers a batch with a batch and notifies the others with a batch (an array).
        sender.batch([("Client.SetVolume", {"id": "spk-a", "volume": {"percent": 31}}),
                      ("Client.SetVolume", {"id": "spk-b", "volume": {"percent": 32}})])
        assert notes.wait_for(2)
        assert sorted((p["id"], p["volume"]["percent"]) for m, p in notes.got
                      if m == "Client.OnVolumeChanged") == [("spk-a", 31), ("spk-b", 32)]
        assert len(notes.got) == 2  # the sender itself is not notified of its own change
    finally:
        sender.close()
        listener.close()


def test_lost_connection_fails_waiting_requests_and_says_so(make_lab) -> None:
    lab = make_lab()
    lost: list[str] = []
    conn = RpcConnection("127.0.0.1", lab.control_port, 5.0, on_lost=lost.append)
    conn.connect()
    lab.stop_server()
    assert lab.wait(lambda: not conn.alive, timeout=10)
    assert lost and "closed the connection" in lost[0]
    with pytest.raises(ConnectionLost, match="not connected"):
        conn.call("Server.GetStatus")
    conn.close()


def test_nothing_listening_is_an_os_error() -> None:
    conn = RpcConnection("127.0.0.1", free_port(), 2.0)
    with pytest.raises(ConnectionRefusedError):
        conn.connect()
