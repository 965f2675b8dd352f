"""One simulated loudspeaker cluster behind the gateway: its state and how it reacts to packets.

No `hub` import, like the rest of the simulator.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from hub_http_gateway.protocol import PRIORITIES, VOLUME_MAX, AudioOut, Code, PacketType, device_status

FAULT_SWITCHES = ("offline", "wrong_volume", "ack_without_acting", "bad_status")
DEFAULT_PLAY_S = 5.0  # how long a file without a known duration plays
RANK = {name: rank for rank, name in enumerate(PRIORITIES)}  # the bulletin classes of circular 39/2020


@dataclass
class SimDevice:
    id: str
    online: bool = True
    volume: int = 5  # the gateway's own 1–10 scale
    audio_out_state: int = AudioOut.IDLE
    source: str | None = None
    rssi: int = -71
    network: str = "4g"
    version: str = "2.3.1"
    # fault switches
    wrong_volume: bool = False  # reports its volume 2 steps off
    ack_without_acting: bool = False  # answers code 0 but changes nothing
    bad_status: bool = False  # its status entry carries volume 11, outside the scale
    # what it holds and what happened to it
    files: list[str] = field(default_factory=list)
    schedule: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    last_seen: float = field(default_factory=time.time)  # when it last reported to the gateway (Unix s)
    heartbeat_s: float = 5.0  # how often an idle online device reports
    play_until: float | None = None  # monotonic
    playing_rank: int = -1  # class of what plays now; a lower class waits its turn instead of cutting in
    waiting: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (-rank, arrival, data)
    _acted: set[str] = field(default_factory=set, repr=False)

    def reported_volume(self) -> int:
        if not self.wrong_volume:
            return self.volume
        return self.volume + 2 if self.volume + 2 <= VOLUME_MAX else self.volume - 2

    def tick(self) -> None:
        if self.play_until is not None and time.monotonic() >= self.play_until:
            self.audio_out_state, self.source, self.play_until, self.playing_rank = AudioOut.IDLE, None, None, -1
            if self.waiting:  # the highest class first, then in order of arrival
                self.waiting.sort(key=lambda w: (w[0], w[1]))
                neg_rank, _, data = self.waiting.pop(0)
                self._play(data, -neg_rank)

    def _play(self, data: dict[str, Any], rank: int) -> None:
        duration = data.get("duration_s") or DEFAULT_PLAY_S
        self.audio_out_state, self.source, self.playing_rank = AudioOut.PLAYING, data["url"], rank
        self.play_until = time.monotonic() + duration * data.get("repeat", 1)

    def state(self) -> dict[str, int]:
        self.tick()
        return {"audio_out_state": int(self.audio_out_state), "volume": self.reported_volume()}

    def status(self) -> dict[str, Any]:
        self.tick()
        if self.online and time.time() - self.last_seen >= self.heartbeat_s:
            self.last_seen = time.time()
        volume = VOLUME_MAX + 1 if self.bad_status else self.reported_volume()
        return device_status(self.id, self.online, int(self.audio_out_state), volume, round(self.last_seen, 3),
                             rssi=self.rssi, network=self.network, version=self.version, source=self.source)

    def handle(self, command_id: str, packet_type: PacketType, data: dict[str, Any],
               expires_at: float | None, priority: str = "normal") -> tuple[Code, dict[str, int] | None]:
        """React to one packet: (result code, state to report back)."""
        code, state = self._handle(command_id, packet_type, data, expires_at, priority)
        if self.online:
            self.last_seen = time.time()  # answering is reporting
        self.commands.append({"command_id": command_id, "packet_type": int(packet_type), "data": data,
                              "code": int(code), "at": time.time()})
        return code, state

    def _handle(self, command_id: str, packet_type: PacketType, data: dict[str, Any],
                expires_at: float | None, priority: str) -> tuple[Code, dict[str, int] | None]:
        if not self.online:
            return Code.DEVICE_OFFLINE, None
        if command_id in self._acted:
            return Code.OK, self.state()  # a repeat (hub retry after a lost answer): answer, act once
        if expires_at is not None and expires_at < time.time():
            return Code.EXPIRED, None
        if self.ack_without_acting:
            return Code.OK, None
        self._acted.add(command_id)
        self._act(packet_type, data, priority)
        return Code.OK, self.state()

    def _act(self, packet_type: PacketType, data: dict[str, Any], priority: str = "normal") -> None:
        if packet_type is PacketType.VOLUME:
            self.volume = data["volume"]
        elif packet_type is PacketType.PLAY_NOW:
            if data.get("volume") is not None:
                self.volume = data["volume"]
            rank = RANK.get(priority, 0)
            self.tick()
            if self.audio_out_state == AudioOut.PLAYING and rank < self.playing_rank:
                self.waiting.append((-rank, len(self.commands), data))  # plays when the higher class ends
            else:
                self._play(data, rank)  # same or higher class pre-empts
        elif packet_type is PacketType.STOP:
            self.audio_out_state, self.source, self.play_until, self.playing_rank = AudioOut.IDLE, None, None, -1
            self.waiting.clear()
        elif packet_type is PacketType.RELAY_START:
            self.audio_out_state, self.source, self.play_until = AudioOut.RELAYING, data["url"], None
        elif packet_type is PacketType.RELAY_STOP:
            if self.audio_out_state == AudioOut.RELAYING:
                self.audio_out_state, self.source = AudioOut.IDLE, None
        elif packet_type is PacketType.PUSH_FILE_URLS:
            self.files = list(dict.fromkeys(self.files + list(data["urls"])))
        elif packet_type is PacketType.SCHEDULE:
            self.schedule = list(data["slots"])

