"""Health: can this hub reach its database and queue, and how many devices answer."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

import hub
from hub.api.common import HubBlueprint, in_scope, runtime, scope
from hub.api.schemas import HealthSchema
from hub.store.db import SchemaError
from hub.store.models import Area, Device, DeviceStatus
from hub.access.permissions import ANYONE
from hub.hookspecs import hookimpl

log = logging.getLogger("hub.api")

blp = HubBlueprint("health", __name__, url_prefix="/api", description="Liveness of the hub and its services.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"health": {"GET": ANYONE}}


def _device_counts() -> dict[str, int]:
    with runtime().db.session() as s:
        stmt = (select(func.count(Device.id), func.count(DeviceStatus.device_id).filter(DeviceStatus.online.is_(True)))
                .select_from(Device).join(Area, Area.code == Device.area_code)
                .outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id))
        cond = in_scope(Area.path, scope(s))
        if cond is not None:
            stmt = stmt.where(cond)
        total, online = s.execute(stmt).one()
    return {"total": total, "online": online, "offline": total - online}


@blp.route("/health")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema, description="The database or Redis cannot be reached")
def health() -> tuple[dict[str, Any], int]:
    """Check health

    Database and Redis reachability, and devices online/offline in the caller's areas.
    503 when either service is down.
    """
    rt = runtime()
    body: dict[str, Any] = {"version": hub.__version__}
    try:
        rt.db.check()
        body["database"] = {"ok": True}
        body["devices"] = _device_counts()
    except (SQLAlchemyError, SchemaError) as exc:  # the answer here, not a 500
        log.warning("health: database: %s", exc)
        body["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        rt.redis.ping()
        body["redis"] = {"ok": True}
    except Exception as exc:  # redis-py raises several kinds; all mean unreachable
        log.warning("health: redis: %s", exc)
        body["redis"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = body["database"]["ok"] and body["redis"]["ok"]
    body["status"] = "ok" if ok else "degraded"
    return body, 200 if ok else 503


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
