"""Hubs on loopback for the hub_follow tests: each its own SQLite database and area tree, its API
served by werkzeug on a free port in a thread, and contents written straight into its database
in the status a test needs (the editorial workflow is tested elsewhere)."""
from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from hub.access import accounts
from hub.access.actors import LOCAL_ADMIN
from hub.api import create_app
from hub.config import Settings
from hub.fleet.areas import AreaRow, import_areas
from hub.plugins import Plugins
from hub.runtime import Runtime
from hub.store.db import utcnow
from hub.store.models import Content

# A province with two districts and their communes (test data, shaped like the legacy list).
AREAS = (AreaRow("80", "Tỉnh Long An", "province"), AreaRow("794", "Thành phố Tân An", "district", "80"),
         AreaRow("807", "Huyện Cần Đước", "district", "80"), AreaRow("27694", "Phường 1", "commune", "794"),
         AreaRow("27697", "Phường 2", "commune", "794"), AreaRow("28099", "Xã Long Hựu Đông", "commune", "807"))
# Older than the feed's settle window (hub.api.feed.SETTLE_S), so a fresh content is served at once.
A_MINUTE_AGO = timedelta(minutes=1)


@dataclass
class LoopbackHub:
    name: str
    rt: Runtime
    server: BaseWSGIServer
    thread: threading.Thread
    written: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def token(self, user: str, roles: list[str], user_areas: list[str], **token_kw: Any) -> str:
        """An API token of a new account `user` (of `user_areas`) on this hub; `token_kw`: areas, read_only."""
        with self.rt.db.session() as s:
            account, _ = accounts.create_user(s, LOCAL_ADMIN, user, roles, user_areas, login=False)
            _, raw = accounts.create_token(s, LOCAL_ADMIN, account, "follower", **token_kw)
        return raw

    def content(self, title: str, *, status: str | None = "published", area: str | None = None,
                ago: timedelta = A_MINUTE_AGO, **fields: Any) -> str:
        """A content in `status` (None: a row older than the workflow), published `ago`."""
        at = utcnow() - ago
        cid = uuid.uuid4().hex
        values: dict[str, Any] = {"kind": "tts_text", "body": f"Nội dung: {title}", "language": "vi",
                                  "priority": "normal", **fields}
        with self.rt.db.session() as s:
            s.add(Content(id=cid, title=title, created_by="editor", created_at=at, status=status, area_code=area,
                          published_at=at if status == "published" else None, **values))
        self.written.append(cid)
        return cid

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.rt.close()


def start_hub(name: str, tmp: Path) -> LoopbackHub:
    settings = Settings(database_url=f"sqlite:///{tmp / 'hub.sqlite3'}", state_dir=str(tmp / "var"),
                        hub_name=name, queue=f"hubtest-follow-{uuid.uuid4().hex[:8]}",
                        secret_key=secrets.token_urlsafe(32), audit_key=secrets.token_urlsafe(32))
    rt = Runtime(settings, plugins=Plugins())  # the hub's own blueprints; no vendor is needed
    rt.db.create()
    with rt.db.session() as s:
        import_areas(s, AREAS)
    server = make_server("127.0.0.1", 0, create_app(rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"hub-{name}", daemon=True)
    thread.start()
    return LoopbackHub(name, rt, server, thread)

