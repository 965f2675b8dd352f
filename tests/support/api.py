"""What the API tests check the same way: a device body to POST, and the JSON error shape."""
from __future__ import annotations

import json
from typing import Any


def device_body(vendors: dict[str, str], did: str, kind: str, area: str, tags: list[str] | None = None,
                **extra: Any) -> dict[str, Any]:
    """A POST /api/devices body for a device of `kind` (its vendor taken from `vendors`)."""
    return {"id": did, "name": f"Thiết bị {did}", "vendor": vendors[kind], "kind": kind, "area_code": area,
            "address": f"addr-{did}", "tags": tags or [], **extra}


def assert_error(resp: Any, status: int, location: str | None = None, field: str | None = None,
                 contains: str | None = None) -> dict[str, Any]:
    """The response is the API's JSON error with `status`, naming `field` in `location` and/or
    saying `contains`; returns its body."""
    body = resp.get_json()
    assert resp.status_code == status, body
    assert resp.mimetype == "application/json"
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status and body["message"]
    if location is not None:
        assert field in body["errors"][location], body
    if contains is not None:
        assert contains in body["message"] or contains in json.dumps(body["errors"], ensure_ascii=False), body
    return body
