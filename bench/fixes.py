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
    from hub.fleet.areas import under_any
    from hub.store.db import utcnow
    from hub.delivery.states import _ACTIVE, _t, finish_by_device
    from hub.store.models import Area, Command, Delivery, Device
    from hub.fleet.targeting import resolve
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

        # 5. Ingest: 5,000 status reports (one per device, rows already there), the old ORM path
        #    against hub.fleet.status_writer.store (Core statements), each run with new volumes
        out["ingest_store_5000_status"] = _ingest_store(rt, [i for i, _ in
                                                             zip(ids, range(5000), strict=False)])

        # 6. API list page: ORM Devices with three relationships against plain row selects
        out[f"api_list_page_{api_devices // 1000}k_devices"] = _api_page(rt, code)

        # 7. Suggested plugin change (not made): parse a status payload with a cached schema
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


def _ingest_store(rt: Any, ids: list[str]) -> dict[str, float]:
    from hub.fleet import health, status_writer as ingest_status
    from hub.store.db import utcnow
    from hub.store.models import DeviceStatus
    fields = ("online", "activity", "source", "volume", "brightness", "power", "signal", "faults", "firmware",
              "reported_at")
    vol = [0]

    def reports() -> list[Any]:
        vol[0] += 1
        now = utcnow()
        return [ingest_status.Report(i, "status", {"online": True, "activity": "idle", "volume": vol[0] % 100,
                                                   "firmware": "bench-1", "signal": {"network": "4g", "rssi_dbm": -70},
                                                   "faults": [], "reported_at": now}, now) for i in ids]

    def old() -> None:  # the ORM loop of Ingest._store_status before hub.fleet.status_writer
        batch = reports()
        with rt.db.session() as s:
            rows: dict[str, Any] = {}
            touched = sorted({r.device_id for r in batch})
            for i in range(0, len(touched), 900):
                for row in s.scalars(select(DeviceStatus).where(DeviceStatus.device_id.in_(touched[i:i + 900]))):
                    rows[row.device_id] = row
            verdict = {}
            for r in batch:
                row = rows[r.device_id]
                for k in fields:
                    if k in r.value:
                        setattr(row, k, r.value[k])
                if row.online:
                    row.last_seen_at = r.at
                verdict[r.device_id] = (*health.reported_state(row), r.at)
            for did, (state, reason, at) in verdict.items():
                health.transition(s, rows[did], state, reason, at)

    def new() -> None:
        batch = reports()
        with rt.db.session() as s:
            ingest_status.store(s, batch)
    new()  # every device gets its row and its first transition before either is timed
    return {"before": _best(old), "after": _best(new)}


def _api_page(rt: Any, code: str) -> dict[str, float]:
    from flask_smorest.pagination import PaginationParameters

    from hub.api.common import page_of
    from hub.api.device_rows import device_pages, page_ids
    from hub.api.devices import device_dict
    from hub.api.schemas import DeviceOutSchema
    from hub.fleet.areas import under_any
    from hub.store.models import Area, Device
    schema = DeviceOutSchema(many=True)

    def page(new: bool) -> None:
        with rt.db.session() as s:
            p = s.scalar(select(Area.path).where(Area.code == code))
            pp = PaginationParameters(1, 100)
            cond = Device.area_code.in_(select(Area.code).where(under_any(Area.path, [p])))
            if new:
                stmt = select(Device.id).join(Area, Device.area_code == Area.code).where(cond).order_by(Device.id)
                schema.dump(device_pages(s, page_ids(s, stmt, pp)))
            else:
                stmt = select(Device).join(Area, Device.area_code == Area.code).where(cond).order_by(Device.id)
                schema.dump([device_dict(d) for d in page_of(s, stmt, pp)])
    return {"before": _best(lambda: page(False), 5), "after": _best(lambda: page(True), 5)}
