"""`hub relays run`: the one process that owns the hub's Icecast and what feeds it.

It starts icecast2 (hub.broadcast.icecast), feeds the fallback mount with a loop of
`relay_fallback_file` (a generated tone when unset), and every `relay_tick_s` reconciles Icecast with
the sessions in the database (hub.broadcast.relay.sessions): a session wanted `running` gets its
mount and source (ffmpeg pulling a station, or playing a content's audio; nothing for a live one,
whose operator connects), a dead-air watcher once it is on air, and its state and counters written
back; a session wanted `stopped` loses its source and mount. The database is the desired state, so
a restarted service resumes every running session.

Dead air: Icecast moves listeners to the fallback the moment a mount loses its source (a station
that ends or stalls past `relay_dead_air_s`: ffmpeg's read timeout ends it); a source that stays
connected but sends silence or nothing is heard by the watcher, and the service disconnects it so
the listeners fall back all the same. Each episode is one `dead_air` event (table relay_events, and
`relay.dead_air` on the event bus). A station is tried again `relay_retry_s` later; a content that
played to its end is `ended`; a live source may reconnect with the same credentials.

One service per hub: two would each start an Icecast on the same port (the second fails to start).
"""
from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from hub.broadcast.dead_air import DeadAir, DeadAirWatcher
from hub.broadcast.icecast import IcecastError, IcecastServer, Mount, MountStats
from hub.broadcast.relay import sources
from hub.broadcast.relay.sessions import FALLBACK_MOUNT, SOURCE_USER, source_password
from hub.events import RelayDeadAir, channel_name, publish
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.models import Content
from hub.store.relay_tables import RelayEvent, RelaySession

log = logging.getLogger(__name__)


@dataclass
class _OnAir:
    """What the service holds for one running session."""

    session_id: str
    kind: str
    mount: Mount
    proc: subprocess.Popen[bytes] | None = None
    watcher: DeadAirWatcher | None = None
    retry_at: float | None = None
    on_air: bool = False
    was_on_air: bool = False
    dead_recorded: bool = False  # this episode's dead air is already on record (the watcher heard it)
    ended: bool = False
    error: str | None = None
    media: Path | None = None


class RelayService:
    def __init__(self, rt: Runtime, icecast: IcecastServer | None = None) -> None:
        self.rt = rt
        s = rt.settings
        self.dir = Path(s.state_dir) / "relay"
        # Icecast's own directory is a fresh one under /tmp: icecast2 runs as nobody, who may not
        # enter state_dir; it holds nothing to keep (passwords are made again at each start)
        self.icecast = icecast or IcecastServer(host=s.icecast_host, port=s.icecast_port,
                                                binary=s.icecast_binary or None)
        self._own_icecast = icecast is None
        self._live: dict[str, _OnAir] = {}
        self._reports: queue.SimpleQueue[tuple[str, DeadAir]] = queue.SimpleQueue()
        self._fallback: subprocess.Popen[bytes] | None = None
        self._fallback_mount: Mount | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> RelayService:
        if self._own_icecast:
            self.icecast.start()
        self._fallback_mount = self.icecast.add_mount(FALLBACK_MOUNT)
        self._feed_fallback()
        return self

    def _feed_fallback(self) -> None:
        s = self.rt.settings
        path = Path(s.relay_fallback_file) if s.relay_fallback_file else sources.default_fallback(self.dir)
        assert self._fallback_mount is not None
        self._fallback = sources.start(sources.file_command(path, self.icecast.source_url(self._fallback_mount),
                                                            s.relay_bitrate_kbps, loop=True),
                                       self.dir / "logs" / "fallback.log")

    def run(self, stop: threading.Event | None = None) -> None:
        """Reconcile every relay_tick_s until `stop` (or stop()) is set."""
        stop = stop or self._stop
        while not stop.is_set() and not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a database or Icecast hiccup: the next tick tries again
                log.exception("relay service tick failed")
            stop.wait(self.rt.settings.relay_tick_s)

    def start_thread(self) -> RelayService:
        """Start, then reconcile in a thread of this process (the embedded demo, tests)."""
        self.start()
        self._thread = threading.Thread(target=self.run, name="hub-relays", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the sources, watchers and Icecast; sessions stay as they are in the database, so
        the next start resumes them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        for entry in list(self._live.values()):
            self._release(entry)
        self._live.clear()
        sources.stop(self._fallback)
        if self._own_icecast:
            self.icecast.stop()

    def __enter__(self) -> RelayService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one reconciliation ---------------------------------------------------------------------
    def tick(self) -> None:
        if self._fallback is not None and self._fallback.poll() is not None:
            log.warning("the fallback source ended (%s); starting it again", self._fallback.returncode)
            self._feed_fallback()
        try:
            stats = self.icecast.stats()
        except (IcecastError, OSError) as exc:
            log.warning("cannot read Icecast's stats: %s", exc)
            stats = {}
        reports: list[tuple[str, DeadAir]] = []
        while True:
            try:
                reports.append(self._reports.get_nowait())
            except queue.Empty:
                break
        with self.rt.db.session() as s:
            rows = list(s.scalars(select(RelaySession).where(or_(
                RelaySession.desired == "running", RelaySession.state.notin_(("stopped", "error"))))))
            for row in rows:
                if row.desired == "stopped":
                    self._take_off_air(row)
                elif row.state != "error":
                    self._keep_on_air(s, row, stats)
            for session_id, dead in reports:
                entry = self._live.get(session_id)
                if entry is not None and entry.on_air:
                    self._dead_air(s, entry, dead.reason, {"since_s": round(time.monotonic() - dead.since, 1)})
            wanted = {r.id for r in rows if r.desired == "running"}
            for gone in set(self._live) - wanted:  # deleted rows, or stopped by another path
                self._release(self._live.pop(gone))

    def _keep_on_air(self, s: Any, row: RelaySession, stats: dict[str, MountStats]) -> None:
        entry = self._live.get(row.id)
        now = time.monotonic()
        if entry is None:
            entry = self._live[row.id] = self._set_up(s, row)
        if entry.proc is not None and entry.proc.poll() is not None:
            code, entry.proc = entry.proc.returncode, None
            tail = sources.log_tail(self._log(entry))
            if entry.kind == "station":
                entry.retry_at = now + self.rt.settings.relay_retry_s
                log.info("relay %s: the station's stream ended (%s: %s); retry in %ss", row.id, code, tail,
                         self.rt.settings.relay_retry_s)
            elif entry.kind == "content":
                entry.ended = True
                self._event(s, row.id, "source_ended", None, {"exit": code} | ({"log": tail} if code else {}))
        if entry.kind == "station" and entry.proc is None and entry.retry_at is not None and now >= entry.retry_at:
            entry.retry_at = None
            self._event(s, row.id, "retry", None, None)
            self._start_station(entry, row)
        here = stats.get(row.mount)
        if here is not None and not entry.on_air:
            entry.on_air = entry.was_on_air = True
            entry.dead_recorded = False
            self._event(s, row.id, "on_air", None, None)
            if entry.watcher is None or not entry.watcher.reading:
                self._watch(entry)
        elif here is None and entry.on_air:
            entry.on_air = False
            if not entry.dead_recorded:  # the source went away by itself: its listeners are on the fallback
                self._dead_air(s, entry, "source_lost", None)
            entry.dead_recorded = False
        state = ("error" if entry.error else "on_air" if entry.on_air else "ended" if entry.ended
                 else "fallback" if entry.was_on_air else "starting")
        counts = (here.listeners, here.bytes_read, here.bytes_sent) if here else (0, row.bytes_read, row.bytes_sent)
        if (row.state, row.error, row.listeners, row.bytes_read, row.bytes_sent) != (state, entry.error, *counts):
            row.state, row.error = state, entry.error
            row.listeners, row.bytes_read, row.bytes_sent = counts
            row.updated_at = utcnow()

    def _set_up(self, s: Any, row: RelaySession) -> _OnAir:
        mount = self.icecast.add_mount(row.mount, fallback=FALLBACK_MOUNT, source_user=SOURCE_USER,
                                       password=source_password(self.rt.settings, row.id))
        entry = _OnAir(row.id, row.kind, mount)
        if row.kind == "station":
            self._start_station(entry, row)
        elif row.kind == "content":
            content = s.get(Content, row.content_id)
            key = (content.media or {}).get("key") if content is not None else None
            try:
                if key is None:
                    raise ValueError(f"content {row.content_id} has no audio")
                entry.media = self.dir / "media" / f"{row.id}.audio"
                entry.media.parent.mkdir(parents=True, exist_ok=True)
                entry.media.write_bytes(self.rt.media_store().get(key).data)
            except Exception as exc:  # the store's own error types, a missing key, a full disk
                entry.error = f"cannot read the content's audio: {exc}"
                return entry
            entry.proc = sources.start(sources.file_command(entry.media, self.icecast.source_url(mount),
                                                            self.rt.settings.relay_bitrate_kbps),
                                       self._log(entry))
        return entry

    def _start_station(self, entry: _OnAir, row: RelaySession) -> None:
        st = self.rt.settings
        entry.proc = sources.start(sources.station_command(row.station_url or "", self.icecast.source_url(entry.mount),
                                                           st.relay_bitrate_kbps, st.relay_dead_air_s),
                                   self._log(entry))

    def _watch(self, entry: _OnAir) -> None:
        if entry.watcher is not None:
            entry.watcher.stop()
        sid = entry.session_id
        entry.watcher = DeadAirWatcher(self.icecast.listen_url(entry.mount), entry.mount.name,
                                       threshold_s=self.rt.settings.relay_dead_air_s,
                                       on_dead_air=lambda dead: self._reports.put((sid, dead))).start()

    def _dead_air(self, s: Any, entry: _OnAir, reason: str, detail: dict[str, Any] | None) -> None:
        """Record one episode and make sure the listeners are on the fallback."""
        entry.dead_recorded = True
        self._event(s, entry.session_id, "dead_air", reason, detail)
        at = utcnow()
        publish(RelayDeadAir(session_id=entry.session_id, mount=entry.mount.name, reason=reason, at=at),
                self.rt.redis, channel_name(self.rt))
        if reason == "source_lost":
            return  # Icecast has moved them already
        # a source still connected but silent: disconnect it, so Icecast moves them
        if entry.proc is not None:
            sources.stop(entry.proc)
            entry.proc = None
            if entry.kind == "station":
                entry.retry_at = time.monotonic() + self.rt.settings.relay_retry_s
            else:
                entry.ended = True
        else:
            self.icecast.kill_source(entry.mount)

    def _take_off_air(self, row: RelaySession) -> None:
        entry = self._live.pop(row.id, None)
        if entry is not None:
            self._release(entry)
        else:  # a live source left from before a restart
            try:
                self.icecast.kill_source(row.mount)
            except (IcecastError, OSError):
                pass
        row.state, row.listeners, row.updated_at = "stopped", 0, utcnow()

    def _release(self, entry: _OnAir) -> None:
        if entry.watcher is not None:
            entry.watcher.stop()
        try:
            # the mount first: without its fallback, stopping the source disconnects its listeners
            # rather than parking them on the fallback (they were told relay_stop)
            self.icecast.remove_mount(entry.mount.name)
        except IcecastError as exc:
            log.warning("could not remove mount %s: %s", entry.mount.name, exc)
        if entry.proc is not None:
            sources.stop(entry.proc)
        elif entry.kind == "live" and self.icecast.running():
            try:
                self.icecast.kill_source(entry.mount)
            except OSError:
                pass
        if entry.media is not None:
            entry.media.unlink(missing_ok=True)

    def _event(self, s: Any, session_id: str, kind: str, reason: str | None, detail: dict[str, Any] | None) -> None:
        log.info("relay %s: %s %s", session_id, kind, reason or "")
        s.add(RelayEvent(session_id=session_id, kind=kind, reason=reason, at=utcnow(), detail=detail))

    def _log(self, entry: _OnAir) -> Path:
        return self.dir / "logs" / f"{entry.session_id}.log"
