"""The hub's side of hub.output.OutputContext: what an output may read, computed from the database
and Redis when it asks, in the contract's plain types (never the tables themselves).

Every query counts in the database (GROUP BY) rather than loading rows: a scrape of a province of
thousands of devices costs a few small result sets.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from hub.capabilities import PRIORITIES
from hub.output import (AreaInfo, AreaStatistics, DeliveryCount, DeviceCount, IngestLag, OutputError, QueueDepth,
                        SourceHealth)
from hub.reports import statistics
from hub.runtime import JOB_SERIALIZER, Runtime
from hub.store.batching import chunks
from hub.store.content_tables import SourceStatus
from hub.store.db import utcnow
from hub.store.models import ACTIVE_STATES, Area, Command, Delivery, DeliveryState, Device, DeviceStatus

UNKNOWN = "unknown"


class HubOutputContext:
    """An OutputContext reading `rt`'s database and Redis. Read-only: it only ever SELECTs."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.hub_name = rt.settings.hub_name

    def now(self) -> datetime:
        return utcnow()

    def _read(self, fn: Any) -> Any:
        try:
            with self._rt.db.session() as s:
                return fn(s)
        except SQLAlchemyError as exc:  # the database is down or locked: worth asking again later
            raise OutputError(f"cannot read the hub's database: {type(exc).__name__}: {exc}"[:500],
                              transient=True) from None

    def devices(self) -> list[DeviceCount]:
        def read(s: Any) -> list[DeviceCount]:
            state = func.coalesce(DeviceStatus.operating_state, UNKNOWN)
            rows = s.execute(select(state, Device.admin_state, Device.kind, Device.vendor, Device.area_code,
                                    func.count(Device.id))
                             .select_from(Device).outerjoin(DeviceStatus, DeviceStatus.device_id == Device.id)
                             .group_by(state, Device.admin_state, Device.kind, Device.vendor, Device.area_code)
                             ).all()
            lineage = _lineages(s, {r[4] for r in rows})
            return [DeviceCount(state=st or UNKNOWN, enabled=admin == "enabled", kind=kind, vendor=vendor,
                                areas=lineage.get(area, ()), count=n) for st, admin, kind, vendor, area, n in rows]
        return self._read(read)

    def deliveries(self, since: datetime | None = None) -> list[DeliveryCount]:
        def read(s: Any) -> list[DeliveryCount]:
            stmt = (select(Delivery.state, Command.priority, func.count(Delivery.id))
                    .join(Command, Command.id == Delivery.command_id)
                    .group_by(Delivery.state, Command.priority))
            if since is not None:
                stmt = stmt.where(or_(Delivery.state.in_(ACTIVE_STATES), Delivery.queued_at >= since))
            return [DeliveryCount(state, priority, n) for state, priority, n in s.execute(stmt)]
        return self._read(read)

    def ingest(self) -> IngestLag:
        def read(s: Any) -> IngestLag:
            last = s.scalar(select(func.max(DeviceStatus.last_seen_at)))
            oldest, n = s.execute(select(func.min(Delivery.sent_at), func.count(Delivery.id))
                                  .where(Delivery.state == DeliveryState.SENT)).one()
            return IngestLag(last_report_at=last, oldest_unacked_at=oldest, unacked=n)
        return self._read(read)

    def sources(self) -> list[SourceHealth]:
        def read(s: Any) -> list[SourceHealth]:
            return [SourceHealth(name=r.name, plugin=r.plugin, failures=r.failures or 0,
                                 last_attempt_at=r.last_attempt_at, last_success_at=r.last_success_at,
                                 last_error=r.last_error)
                    for r in s.scalars(select(SourceStatus).order_by(SourceStatus.name))]
        return self._read(read)

    def statistics(self, period_start: datetime, period_end: datetime,
                   area_code: str | None = None) -> list[AreaStatistics]:
        tz = ZoneInfo(self._rt.settings.timezone)
        first = period_start.astimezone(tz).date()
        last = (period_end - timedelta(microseconds=1)).astimezone(tz).date()
        try:
            period = statistics.Period.of(first, max(first, last), tz)
        except statistics.PeriodError as exc:
            raise OutputError(f"statistics: {exc.field}: {exc}") from None

        def read(s: Any) -> list[AreaStatistics]:
            roots = [area_code] if area_code is not None else list(
                s.scalars(select(Area.code).where(Area.parent_code.is_(None)).order_by(Area.code)))
            try:
                report = statistics.compute(s, roots, period)
            except statistics.PeriodError as exc:
                raise OutputError(f"statistics: {exc.field}: {exc}") from None
            return [AreaStatistics(area_code=r.code, area_name=r.name, level=r.type, parent_code=r.parent_code,
                                   period_start=period.start, period_end=period.end, devices=r.devices,
                                   uptime_percent=r.uptime_percent, bulletins=r.bulletins,
                                   minutes_broadcast=round(r.minutes, 2),
                                   bulletins_by_class={c: r.bulletins_by_class.get(c, 0) for c in PRIORITIES}
                                   | dict(r.bulletins_by_class), deliveries=r.deliveries,
                                   deliveries_acked=r.deliveries_acked, emergency_targeted=r.emergency_targeted,
                                   emergency_acked=r.emergency_acked, not_played=r.not_played)
                    for r in report.rows]
        return self._read(read)

    def queues(self) -> list[QueueDepth]:
        """Every rq queue of this hub (named `<queue>.…`): those rq knows of, and the delivery
        queues even before their first job."""
        rt = self._rt
        prefix = f"{rt.settings.queue}."
        try:
            known = {q.name for q in Queue.all(connection=rt.redis, serializer=JOB_SERIALIZER)
                     if q.name.startswith(prefix)}
            known |= {q.name for q in rt.queues()}
            out = []
            for name in sorted(known):
                q = Queue(name, connection=rt.redis, serializer=JOB_SERIALIZER)
                out.append(QueueDepth(name=name, waiting=q.count, running=q.started_job_registry.count,
                                      failed=q.failed_job_registry.count))
            return out
        except RedisError as exc:
            raise OutputError(f"cannot read the job queues: {type(exc).__name__}: {exc}"[:500],
                              transient=True) from None


def _lineages(s: Any, codes: set[str]) -> dict[str, tuple[AreaInfo, ...]]:
    """Each area code's areas from the top down to it, from the stored paths (`/80/794/27694/`)."""
    paths: dict[str, str] = {}
    for chunk in chunks(sorted(codes)):
        paths.update(s.execute(select(Area.code, Area.path).where(Area.code.in_(chunk))).all())
    chains = {code: [c for c in path.split("/") if c] for code, path in paths.items()}
    info: dict[str, AreaInfo] = {}
    for chunk in chunks(sorted({c for chain in chains.values() for c in chain})):
        for code, name, type_ in s.execute(select(Area.code, Area.name, Area.type).where(Area.code.in_(chunk))):
            info[code] = AreaInfo(code, name, type_)
    return {code: tuple(info[c] for c in chain if c in info) for code, chain in chains.items()}
