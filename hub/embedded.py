"""The embedded default: stand-ins for what a laptop lacks, never for the code paths.

When no Redis answers, rq runs on fakeredis; when no MQTT broker answers, an amqtt broker runs
in a thread on a loopback port. The hub's own code (dispatch, jobs, adapters, ingest) is the
same code production runs against real Redis and Mosquitto.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from redis import Redis

log = logging.getLogger(__name__)


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_or_fake(url: str, force_fake: bool = False) -> tuple[Redis, str]:
    """A real Redis when one answers at `url`, else an in-process fakeredis; and which it is."""
    try:
        if force_fake:
            raise ConnectionError("embedded mode asked for")
        r = Redis.from_url(url, socket_connect_timeout=1)
        r.ping()
        return r, f"Redis at {url}"
    except Exception:
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer()), "fakeredis (in-process; nothing persists)"


class EmbeddedBroker:
    """An amqtt MQTT broker on 127.0.0.1 in a background thread."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt", daemon=True)

    def _run(self) -> None:
        from amqtt.broker import Broker

        asyncio.set_event_loop(self._loop)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        try:
            self._broker = Broker(config)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self, timeout: float = 10) -> EmbeddedBroker:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"embedded MQTT broker did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._broker is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(10)
            except Exception:
                log.debug("embedded broker shutdown", exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
