"""WSGI apps for the API bench, served by gunicorn as in production (`gunicorn -w N`):
`hub_app()` is the hub's API with the `local_admin` authenticator (no login in the loop);
`floor_app()` is a bare WSGI app returning a fixed JSON page of the same size class — the same
server and client with no hub."""
from __future__ import annotations

import json
from typing import Any


def hub_app() -> Any:
    from hub.api import create_app
    from hub.access.actors import local_admin
    from hub.runtime import get_runtime
    return create_app(get_runtime(), authenticator=local_admin)


def floor_app() -> Any:
    body = json.dumps([{"id": f"B-{i:06d}", "name": f"speaker {i}", "area_code": "25000", "status": None}
                       for i in range(100)]).encode()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    return app
