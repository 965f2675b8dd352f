"""The embedded default: stand-ins for what a laptop lacks, never for the code paths.

When no Redis answers, rq runs on fakeredis; when no MQTT broker answers, a broker is started
on a free loopback port for this process's lifetime: Mosquitto if its binary is installed,
otherwise amqtt (pure Python) in a child process so that it has a core of its own. The hub's
code (dispatch, jobs, adapters, ingest) is the same code production runs.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis
from hub.ports import free_port

log = logging.getLogger(__name__)


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False




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


def _mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto",) if os.access(p, os.X_OK)), None)


MOSQUITTO_CONF = """listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
set_tcp_nodelay true
"""


class EmbeddedBroker:
    """An MQTT broker on 127.0.0.1:`port`, a child of this process. `start()`, then `stop()`."""

    def __init__(self, port: int | None = None, prefer_amqtt: bool = False) -> None:
        self.port = port or free_port()
        self.prefer_amqtt = prefer_amqtt
        self.kind = ""
        self._proc: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def start(self, timeout: float = 15) -> EmbeddedBroker:
        mosquitto = None if self.prefer_amqtt else _mosquitto_binary()
        if mosquitto:
            self._tmp = tempfile.TemporaryDirectory(prefix="hub-mqtt-")
            conf = Path(self._tmp.name) / "mosquitto.conf"
            conf.write_text(MOSQUITTO_CONF.format(port=self.port))
            cmd, self.kind = [mosquitto, "-c", str(conf)], "Mosquitto"
        else:
            cmd, self.kind = [sys.executable, "-m", "hub.devkit.embedded", str(self.port)], "amqtt"
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port, 0.2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded {self.kind} broker did not start on 127.0.0.1:{self.port}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._tmp is not None:
            self._tmp.cleanup()


def _serve_amqtt(port: int) -> None:
    import asyncio

    from amqtt.broker import Broker

    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
              "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
              "topic-check": {"enabled": False}}

    async def serve() -> None:
        broker = Broker(config)
        await broker.start()
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    _serve_amqtt(int(sys.argv[1]))
