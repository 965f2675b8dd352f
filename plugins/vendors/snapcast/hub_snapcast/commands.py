"""Hub verbs -> snapserver requests, and snapserver's answers -> per-device Results.

A Snapcast group, not a client, is what plays a stream: play, stop and relay switch the
client's whole group. Requests are deduplicated, so a batch of ten clients in one group costs
one Group.SetStream.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hub.vendor import Outcome, Outgoing, Result

from hub_snapcast.parsing import Routing
from hub_snapcast.rpc import Reply
from hub_snapcast.state import ServerState

Detail = Callable[[list[Reply]], dict[str, Any]]


@dataclass
class _Item:
    out: Outgoing
    ops: list[int] = field(default_factory=list)
    detail: Detail | None = None
    result: Result | None = None  # settled without asking snapserver


class Plan:
    """The requests one batch needs, and which devices each answer belongs to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.items: list[_Item] = []
        self._seen: dict[str, int] = {}

    def op(self, method: str, params: dict[str, Any]) -> int:
        key = json.dumps([method, params], sort_keys=True)
        if key not in self._seen:
            self._seen[key] = len(self.calls)
            self.calls.append((method, params))
        return self._seen[key]

    def results(self, replies: Sequence[Reply]) -> list[Result]:
        """One Result per item, from the answers to `calls` (in the same order)."""
        out = []
        for item in self.items:
            if item.result is not None:
                out.append(item.result)
                continue
            mine = [replies[i] for i in item.ops]
            refused = next((r for r in mine if r.error is not None), None)
            if refused is not None:
                out.append(_refused(item.out, refused))
            else:
                detail = item.detail(mine) if item.detail else None
                out.append(Result(item.out.device.id, Outcome.ACKED, detail=detail))
        return out


def _failed(out: Outgoing, reason: str, transient: bool = False) -> Result:
    return Result(out.device.id, Outcome.FAILED, reason=reason, transient=transient)


def _refused(out: Outgoing, reply: Reply) -> Result:
    err = reply.error
    assert err is not None
    if err.detail == "Client not found":
        return _failed(out, f"snapserver knows no client {out.device.address}")
    if err.detail == "Group not found":  # regrouped since we read the status: read it again
        return _failed(out, f"snapserver no longer has the group of client {out.device.address}", transient=True)
    return _failed(out, f"snapserver refused {reply.method}: {err.detail} (JSON-RPC error {err.code})")


def _expired(out: Outgoing, now: datetime) -> bool:
    expires = out.envelope.expires_at
    if expires is None:
        return False
    return (expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)) <= now


def plan(batch: Sequence[Outgoing], state: ServerState, routing: Routing, now: datetime | None = None) -> Plan:
    p = Plan()
    now = now or datetime.now(timezone.utc)
    for out in batch:
        item = _Item(out)
        p.items.append(item)
        address = out.device.address
        if _expired(out, now):
            # A bulletin past its deadline is worse than none: snapserver has no deadline
            # field, so the adapter refuses it here, before any request is sent.
            item.result = _failed(out, "expired before it reached the device "
                                       f"(expires_at {out.envelope.expires_at.isoformat(timespec='seconds')})")
        elif state.client(address) is None:
            item.result = _failed(out, f"snapserver knows no client {address}")
        elif not state.connected(address):
            # snapserver would store the change and apply it on reconnect, but nobody hears it
            # now: reporting it delivered would mislead whoever sent a bulletin.
            item.result = _failed(out, f"snapclient {address} is not connected to snapserver", transient=True)
        else:
            verb = _VERBS.get(out.envelope.verb)
            if verb is None:
                item.result = _failed(out, f"snapcast cannot carry out {out.envelope.verb}")
            else:
                verb(p, item, state, routing)
    return p


def _set_volume(p: Plan, item: _Item, state: ServerState, routing: Routing) -> None:
    level = item.out.envelope.params.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        item.result = _failed(item.out, f"set_volume needs params.level 0-100, got {level!r}")
        return
    # Only the percent: snapserver keeps the client's mute flag as it is.
    item.ops.append(p.op("Client.SetVolume", {"id": item.out.device.address, "volume": {"percent": level}}))

    def detail(replies: list[Reply]) -> dict[str, Any]:
        volume = (replies[0].result or {}).get("volume") or {}
        return {"volume": volume.get("percent"), "muted": volume.get("muted")}

    item.detail = detail


def _group_detail(state: ServerState, address: str, gid: str, **extra: Any) -> Detail:
    others = [c for c in state.groups[gid]["clients"] if c != address]

    def detail(replies: list[Reply]) -> dict[str, Any]:
        got: dict[str, Any] = {"group": gid}
        for r in replies:
            res = r.result or {}
            if r.method == "Group.SetStream":
                got["stream_id"] = res.get("stream_id")
            elif r.method == "Group.SetMute":
                got["muted"] = res.get("mute")
        got.update(extra)
        if others:
            got["also_switched"] = others  # grouped clients follow: the operator should know
        return got

    return detail


def _switch(p: Plan, item: _Item, state: ServerState, routing: Routing, uri: str | None) -> None:
    out = item.out
    if not uri:
        item.result = _failed(out, f"{out.envelope.verb} needs a stream: snapcast:<role> or a relay URL")
        return
    target = routing.target(uri)
    if isinstance(target, str):
        item.result = _failed(out, target)
        return
    stream_id, url = target
    if stream_id not in state.streams:
        item.result = _failed(out, f"snapserver has no stream {stream_id!r} "
                                   f"(it has: {', '.join(sorted(state.streams)) or 'none'})")
        return
    group = state.group_of_client(out.device.address)
    assert group is not None
    gid = group["id"]
    item.ops.append(p.op("Group.SetStream", {"id": gid, "stream_id": stream_id}))
    item.ops.append(p.op("Group.SetMute", {"id": gid, "mute": False}))  # after the switch: no blip of the old
    extra: dict[str, Any] = {"url": url} if url else {}
    if "volume" in out.envelope.params:
        # Snapcast has no volume "for this bulletin only", and a Client.SetVolume would outlive it.
        extra["volume_not_applied"] = out.envelope.params["volume"]
    item.detail = _group_detail(state, out.device.address, gid, **extra)


def _play(p: Plan, item: _Item, state: ServerState, routing: Routing) -> None:
    content = item.out.envelope.content or {}
    _switch(p, item, state, routing, content.get("media_uri"))


def _relay_start(p: Plan, item: _Item, state: ServerState, routing: Routing) -> None:
    env = item.out.envelope
    _switch(p, item, state, routing, env.params.get("url") or (env.content or {}).get("media_uri"))


def _to_idle(p: Plan, item: _Item, state: ServerState, routing: Routing, only_from_relay: bool) -> None:
    group = state.group_of_client(item.out.device.address)
    assert group is not None
    gid, current = group["id"], group["stream_id"]
    if only_from_relay and current not in routing.url_of:
        item.result = Result(item.out.device.id, Outcome.ACKED,
                             detail={"group": gid, "stream_id": current, "changed": False})
        return
    idle = routing.idle
    if idle not in state.streams:
        item.result = _failed(item.out, f"snapserver has no idle stream {idle!r} "
                                        f"(it has: {', '.join(sorted(state.streams)) or 'none'})")
        return
    item.ops.append(p.op("Group.SetStream", {"id": gid, "stream_id": idle}))
    item.detail = _group_detail(state, item.out.device.address, gid)


def _stop(p: Plan, item: _Item, state: ServerState, routing: Routing) -> None:
    _to_idle(p, item, state, routing, only_from_relay=False)


def _relay_stop(p: Plan, item: _Item, state: ServerState, routing: Routing) -> None:
    _to_idle(p, item, state, routing, only_from_relay=True)


_VERBS: dict[str, Callable[[Plan, _Item, ServerState, Routing], None]] = {
    "set_volume": _set_volume,
    "stop": _stop,
    "play": _play,
    "relay_start": _relay_start,
    "relay_stop": _relay_stop,
}
