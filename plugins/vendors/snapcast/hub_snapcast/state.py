"""What snapserver last said about its clients, groups and streams, kept current from
`Server.GetStatus` answers, our own requests' answers and notifications.

Snapserver only notifies the *other* control connections of a change, so the adapter applies
the answers to its own requests here too. Imports nothing from `hub`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any


class ProtocolError(ValueError):
    """snapserver sent something that does not have the shape its API documents."""


@dataclass
class Change:
    """Clients whose derived status may differ now, and clients whose connection flipped."""

    clients: set[str] = field(default_factory=set)
    presence: dict[str, bool] = field(default_factory=dict)
    stale: bool = False  # we saw a reference to something we do not know: ask for the full status


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be an object, not {type(value).__name__}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what} must be a non-empty string")
    return value


class ServerState:
    def __init__(self) -> None:
        self.clients: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}  # id -> {"id", "muted", "stream_id", "clients": [ids]}
        self.group_of: dict[str, str] = {}
        self.streams: dict[str, dict[str, Any]] = {}
        self.known = False

    @classmethod
    def from_server(cls, server: Any) -> ServerState:
        state = cls()
        state.replace(server)
        return state

    # -- lookups ---------------------------------------------------------------------------

    def client(self, client_id: str) -> dict[str, Any] | None:
        return self.clients.get(client_id)

    def group_of_client(self, client_id: str) -> dict[str, Any] | None:
        gid = self.group_of.get(client_id)
        return self.groups.get(gid) if gid is not None else None

    def stream_of_client(self, client_id: str) -> dict[str, Any] | None:
        group = self.group_of_client(client_id)
        return self.streams.get(group["stream_id"]) if group else None

    def connected(self, client_id: str) -> bool:
        client = self.clients.get(client_id)
        return bool(client and client.get("connected"))

    # -- updates ---------------------------------------------------------------------------

    def replace(self, server: Any) -> Change:
        """Take a whole `server` object (GetStatus result["server"], Server.OnUpdate params["server"])."""
        server = _obj(server, "server")
        clients: dict[str, dict[str, Any]] = {}
        groups: dict[str, dict[str, Any]] = {}
        group_of: dict[str, str] = {}
        raw_groups = server.get("groups")
        if not isinstance(raw_groups, list):
            raise ProtocolError("server.groups must be a list")
        for g in raw_groups:
            g = _obj(g, "group")
            gid = _str(g.get("id"), "group.id")
            members = g.get("clients")
            if not isinstance(members, list):
                raise ProtocolError(f"group {gid}: clients must be a list")
            ids = []
            for c in members:
                c = _obj(c, f"client of group {gid}")
                cid = _str(c.get("id"), f"client id in group {gid}")
                clients[cid] = c
                group_of[cid] = gid
                ids.append(cid)
            groups[gid] = {"id": gid, "muted": bool(g.get("muted")), "stream_id": str(g.get("stream_id") or ""),
                           "clients": ids}
        streams: dict[str, dict[str, Any]] = {}
        for s in server.get("streams") or []:
            s = _obj(s, "stream")
            streams[_str(s.get("id"), "stream.id")] = s
        change = Change(clients=set(clients) | set(self.clients))
        for cid, c in clients.items():
            now = bool(c.get("connected"))
            before = self.clients.get(cid)
            if before is None or bool(before.get("connected")) != now:
                change.presence[cid] = now
        self.clients, self.groups, self.group_of, self.streams = clients, groups, group_of, streams
        self.known = True
        return change

    def apply(self, method: str, params: dict[str, Any]) -> Change:
        """A notification (or our own request's effect, phrased as the notification snapserver
        would have sent to others). Unknown methods change nothing."""
        change = Change()
        if method == "Server.OnUpdate":
            return self.replace(params.get("server"))
        if method in ("Client.OnConnect", "Client.OnDisconnect"):
            client = _obj(params.get("client"), f"{method} client")
            cid = _str(client.get("id") or params.get("id"), f"{method} id")
            self.clients[cid] = client
            change.clients.add(cid)
            change.presence[cid] = method == "Client.OnConnect"
            change.stale = cid not in self.group_of
            return change
        if method == "Client.OnVolumeChanged":
            cid = _str(params.get("id"), "Client.OnVolumeChanged id")
            volume = _obj(params.get("volume"), "Client.OnVolumeChanged volume")
            client = self.clients.get(cid)
            if client is None:
                change.stale = True
                return change
            client = copy.deepcopy(client)
            client.setdefault("config", {})["volume"] = dict(volume)
            self.clients[cid] = client
            change.clients.add(cid)
            return change
        if method in ("Group.OnMute", "Group.OnStreamChanged"):
            gid = _str(params.get("id"), f"{method} id")
            group = self.groups.get(gid)
            if group is None:
                change.stale = True
                return change
            if method == "Group.OnMute":
                group["muted"] = bool(params.get("mute"))
            else:
                group["stream_id"] = _str(params.get("stream_id"), "Group.OnStreamChanged stream_id")
                change.stale = group["stream_id"] not in self.streams
            change.clients.update(group["clients"])
            return change
        if method == "Stream.OnUpdate":
            stream = _obj(params.get("stream"), "Stream.OnUpdate stream")
            sid = _str(stream.get("id") or params.get("id"), "Stream.OnUpdate id")
            self.streams[sid] = stream
            for gid, group in self.groups.items():
                if group["stream_id"] == sid:
                    change.clients.update(group["clients"])
            return change
        return change

    def apply_reply(self, method: str, params: dict[str, Any], result: Any) -> Change:
        """Apply the answer to one of our own Set requests."""
        result = result if isinstance(result, dict) else {}
        if method == "Client.SetVolume" and isinstance(result.get("volume"), dict):
            return self.apply("Client.OnVolumeChanged", {"id": params["id"], "volume": result["volume"]})
        if method == "Group.SetMute" and "mute" in result:
            return self.apply("Group.OnMute", {"id": params["id"], "mute": result["mute"]})
        if method == "Group.SetStream" and "stream_id" in result:
            return self.apply("Group.OnStreamChanged", {"id": params["id"], "stream_id": result["stream_id"]})
        return Change()
