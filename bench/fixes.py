"""Before/after of the hub changes made for the bench, measured side by side in the same run:
the old code path (reproduced here verbatim) against the current one, on the same database."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select

from bench.common import hub_config, insert_devices, load_areas, log, make_runtime


def _best(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


def run(workdir: Path, devices: int = 10_000, api_devices: int = 100_000) -> dict[str, Any]:
    from hub.areas import under_any
    from hub.db import utcnow
    from hub.deliveries import _ACTIVE, _t, finish_by_device
    from hub.models import Area, Command, Delivery, Device
    from hub.targeting import resolve
    d = workdir / "fixes"
    d.mkdir()
    rt = make_runtime(hub_config(d, f"sqlite:///{d}/hub.sqlite3", 1, "bench/fixes"))
    out: dict[str, Any] = {"devices": devices, "unit": "ms, best of 3"}
    try:
        communes = load_areas(rt)
        insert_devices(rt, api_devices, communes)
        target = {"areas": [communes[0], communes[1]]}
        with rt.db.session() as s:
            n_sel = len(resolve(s, target))

        # 1. targeting.resolve: tags/status no longer loaded for every selected device
        def old_resolve() -> None:
            with rt.db.session() as s:
                ids = sorted(s.scalars(select(Device.id).join(Area, Device.area_code == Area.code)
                                       .where(under_any(Area.path, ["/80/"]))))[:devices]
                devs = []
                for i in range(0, len(ids), 900):
                    devs.extend(s.scalars(select(Device).where(Device.id.in_(ids[i:i + 900]))).unique())
                [set() <= set(x.tag_names) for x in devs]

        def new_resolve() -> None:
            with rt.db.session() as s:
                ids = sorted(s.scalars(select(Device.id).join(Area, Device.area_code == Area.code)
                                       .where(under_any(Area.path, ["/80/"]))))[:devices]
                resolve(s, {"devices": ids})
        out["resolve_10k_devices"] = {"before": _best(old_resolve), "after": _best(new_resolve)}
        del n_sel

        # 2. jobs.send_batch's row load for one 500-device batch
        cid = uuid.uuid4().hex
        now = utcnow()
        with rt.db.session() as s:
            s.add(Command(id=cid, verb="play", params={}, priority="emergency", expires_at=now, request_hash="x",
                          issuer="bench", target={}, created_at=now, total=devices))
            s.flush()
            ids = list(s.scalars(select(Device.id).order_by(Device.id).limit(devices)))
            s.execute(Delivery.__table__.insert(), [
                {"command_id": cid, "device_id": i, "vendor": "mqtt_speaker", "state": "sent", "attempts": 1,
                 "queued_at": now} for i in ids])
            batch = list(s.scalars(select(Delivery.id).where(Delivery.command_id == cid).limit(500)))
        from sqlalchemy.orm import lazyload

        def rows(opts: list[Any]) -> None:
            with rt.db.session() as s:
                s.execute(select(Delivery, Device).join(Device, Device.id == Delivery.device_id).options(*opts)
                          .where(Delivery.id.in_(batch), Delivery.state == "sent")).all()
        out["send_batch_row_load_500"] = {
            "before": _best(lambda: rows([])),
            "after": _best(lambda: rows([lazyload(Device.area), lazyload(Device.tags), lazyload(Device.status)]))}

        # 3. deliveries.finish_by_device for 10,000 plain acks (rows reset between runs)
        def reset() -> None:
            with rt.db.session() as s:
                s.execute(_t.update().where(_t.c.command_id == cid).values(state="sent", finished_at=None))

        def old_finish() -> None:
            with rt.db.session() as s:
                params = [{"b_cmd": cid, "b_dev": i, "b_state": "acked", "b_reason": None, "b_result": None}
                          for i in ids]
                stmt = (_t.update().where(_t.c.command_id == bindparam("b_cmd"), _t.c.device_id == bindparam("b_dev"),
                                          _ACTIVE)
                        .values(state=bindparam("b_state"), reason=bindparam("b_reason"),
                                result=bindparam("b_result"), finished_at=utcnow()))
                s.connection().execute(stmt, params)

        def new_finish() -> None:
            with rt.db.session() as s:
                finish_by_device(s, [(cid, i, "acked", None, None) for i in ids])

        def timed(fn: Any) -> float:
            best = float("inf")
            for _ in range(3):
                reset()
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
            return round(best * 1000, 1)
        out["finish_by_device_10k_acks"] = {"before": timed(old_finish), "after": timed(new_finish)}

        # 4. GET /api/devices?area=<commune>: the count and the page query, old and new filter
        path = rt.db.session  # noqa: F841
        code = communes[5]

        def api_query(new: bool) -> None:
            with rt.db.session() as s:
                p = s.scalar(select(Area.path).where(Area.code == code))
                stmt = select(Device).join(Area, Device.area_code == Area.code).order_by(Device.id)
                if new:
                    stmt = stmt.where(Device.area_code.in_(select(Area.code).where(under_any(Area.path, [p]))))
                else:
                    stmt = stmt.where(under_any(Area.path, [p]))
                s.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
                list(s.scalars(stmt.limit(100)).unique())
        out[f"api_area_query_{api_devices // 1000}k_devices"] = {"before": _best(lambda: api_query(False)),
                                                                 "after": _best(lambda: api_query(True))}

        # 5. Suggested plugin change (not made): parse a status payload with a cached schema
        from hub_mqtt_speaker import parsing

        from hub.schemas.status import DeviceStatusSchema
        payload = json.dumps({"ts": "2026-11-23T00:00:00.000Z", "online": True, "activity": "idle", "volume": 5,
                              "firmware": "bench-1", "signal": {"network": "4g", "rssi_dbm": -70}}).encode()
        n = 2000
        t = time.perf_counter()
        for _ in range(n):
            parsing.parse_status("b-000001", payload)
        per_now = (time.perf_counter() - t) / n
        cached = DeviceStatusSchema()
        orig = parsing.DeviceStatusSchema
        parsing.DeviceStatusSchema = lambda: cached  # type: ignore[assignment]  # in this process only
        try:
            t = time.perf_counter()
            for _ in range(n):
                parsing.parse_status("b-000001", payload)
            per_cached = (time.perf_counter() - t) / n
        finally:
            parsing.DeviceStatusSchema = orig
        out["plugin_parse_status_us_per_msg"] = {"now": round(per_now * 1e6, 1),
                                                 "with_cached_schema (suggested)": round(per_cached * 1e6, 1)}
        log(f"hub fixes before/after: {out}")
    finally:
        rt.close()
    return out
