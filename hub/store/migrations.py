"""Upgrading a database made by an earlier hub, in place, one schema version at a time.

`create_all` makes missing tables but never changes an existing one, so a province that has run
the hub for years keeps its data only if each schema change comes with a step here. Steps are
additive (new nullable columns, new indexes) so that a process of the previous version still
running against the upgraded database keeps working until it is restarted. Each step runs in
its own transaction and restamps the version, so an interrupted upgrade resumes where it
stopped. Columns and indexes are read from hub.store.models, so their types follow the dialect.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from hub.store.models import Base
from hub.store.statistics_tables import backfill_device_state_log


@dataclass(frozen=True)
class Step:
    why: str
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> new columns
    indexes: tuple[tuple[str, str], ...] = ()  # (table, index name) as declared in hub.store.models
    drop_indexes: tuple[tuple[str, str], ...] = ()  # superseded by a new one
    # Fills a table this step introduces from older rows; run after create_all has made it.
    backfill: Callable[[Connection], None] | None = None


# STEPS[n] brings a database stamped n - 1 to n.
STEPS: dict[int, Step] = {
    2: Step(why="scheduled commands; device list paged from the (area, id) index",
            columns={"commands": ("start_at", "released_at", "cancelled_at", "cancelled_by")},
            indexes=(("commands", "ix_commands_due"), ("devices", "ix_devices_area_id")),
            drop_indexes=(("devices", "ix_devices_area_code"),)),
    3: Step(why="commands, idempotency keys and audit entries keyed on the account's id, not its name; "
                "deliveries claimed by the job sending them; the issuer's scope on each command; "
                "ingest_quarantine (a new table, made by create_all)",
            columns={"commands": ("issuer_id", "account_idempotency_key", "issuer_scope"), "audit": ("actor_id",),
                     "deliveries": ("claimed_at", "claimed_by")},
            indexes=(("commands", "ux_commands_account_idempotency"),)),
    4: Step(why="the content pipeline: contents get an area, a workflow status, versions and their source; "
                "devices get coordinates, indexed for a geometry's bounding box; content_versions, source_status, "
                "media_objects and programmes (new tables, made by create_all)",
            columns={"contents": ("area_code", "status", "version", "updated_at", "updated_by", "reviewed_by",
                                  "reviewed_at", "published_by", "published_at", "reason", "source", "external_id",
                                  "geography", "speech"),
                     "devices": ("latitude", "longitude")},
            indexes=(("contents", "ux_contents_source_item"), ("contents", "ix_contents_area_status"),
                     ("devices", "ix_devices_lat_lon"))),
    5: Step(why="broadcasting and reports: programmes get their area, a precedence for kept overlaps and a "
                "revision that names their commands; deliveries keep the device's area when sent, so reports "
                "outlive a moved or removed device; as_run (what devices played), device_state_log (uptime "
                "history that outlives its device, filled from devices and device_events), relay_sessions and "
                "relay_events (live relay), emergencies (the one-step emergency) (new tables, made by create_all)",
            columns={"programmes": ("area_code", "precedence", "revision", "revised_at"),
                     "deliveries": ("area_code",)},
            indexes=(("programmes", "ix_programmes_area_code"),),
            backfill=backfill_device_state_log),
}


def _add_column(conn: Connection, table: str, name: str) -> None:
    column = Base.metadata.tables[table].c[name]
    if not column.nullable:
        raise RuntimeError(f"{table}.{name}: a migration can only add nullable columns")
    ddl_type = column.type.compile(dialect=conn.dialect)
    prep = conn.dialect.identifier_preparer
    conn.execute(text(f"ALTER TABLE {prep.quote(table)} ADD COLUMN {prep.quote(name)} {ddl_type}"))


def apply(conn: Connection, version: int) -> str:
    """Apply STEPS[version] on `conn` (inside the caller's transaction); returns what it did.
    Parts already present (an interrupted earlier attempt) are skipped."""
    step = STEPS[version]
    insp = inspect(conn)
    done: list[str] = []
    for table, names in step.columns.items():
        have = {c["name"] for c in insp.get_columns(table)}
        for name in names:
            if name not in have:
                _add_column(conn, table, name)
                done.append(f"column {table}.{name}")
    for table, name in step.drop_indexes:
        if name in {i["name"] for i in insp.get_indexes(table)}:
            conn.execute(text(f"DROP INDEX {conn.dialect.identifier_preparer.quote(name)}"))
            done.append(f"dropped index {name}")
    for table, name in step.indexes:
        if name not in {i["name"] for i in inspect(conn).get_indexes(table)}:
            index = next(i for i in Base.metadata.tables[table].indexes if i.name == name)
            index.create(conn)
            done.append(f"index {name}")
    return f"{version}: {step.why} ({', '.join(done) or 'already present'})"
