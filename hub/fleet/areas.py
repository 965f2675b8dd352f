"""The area tree: Vietnam's administrative units, any depth.

The official list (34 provinces, 3,321 communes since 1 July 2025) comes from the
`vietnam-provinces` package; older three-level data and villages below communes come from a
CSV or YAML file with code, name, type and parent_code.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.store.models import Area


class AreaError(ValueError):
    """Area data is wrong; the message names the row and the field."""


@dataclass(frozen=True)
class AreaRow:
    code: str
    name: str
    type: str
    parent_code: str | None = None


def official_rows(province_codes: Iterable[str] | None = None) -> list[AreaRow]:
    """Provinces and communes of the official list, optionally only some provinces."""
    from vietnam_provinces import Province, Ward

    wanted = {str(int(c)) for c in province_codes} if province_codes else None
    rows: list[AreaRow] = []
    for p in Province.iter_all():
        if wanted is not None and str(int(p.code)) not in wanted:
            continue
        pcode = f"{int(p.code):02d}"
        rows.append(AreaRow(pcode, p.name, "province", None))
    kept = {r.code for r in rows}
    for w in Ward.iter_all():
        pcode = f"{int(w.province_code):02d}"
        if pcode in kept:
            rows.append(AreaRow(f"{int(w.code):05d}", w.name, "commune", pcode))
    if wanted and not rows:
        raise AreaError(f"no province with code {', '.join(sorted(wanted))} in the official list")
    return rows


@lru_cache(maxsize=1)
def official_codes() -> frozenset[str]:
    """Every code of the official list (provinces and communes), as `official_rows` writes them."""
    return frozenset(r.code for r in official_rows())


@dataclass(frozen=True)
class Move:
    """An area already stored that an import would put under another parent."""
    code: str
    name: str
    type: str
    old_parent: str | None
    new_parent: str | None
    accounts: tuple[str, ...]  # accounts holding this area or one below it: their reach moves too
    devices: int

    def __str__(self) -> str:
        who = f"; accounts {', '.join(self.accounts)}" if self.accounts else ""
        return (f"{self.code} ({self.name}, {self.type}) from {self.old_parent or 'the top'} to "
                f"{self.new_parent or 'the top'}, with {self.devices} devices{who}")


def planned_moves(session: Session, rows: Iterable[AreaRow]) -> list[Move]:
    """Areas already stored whose parent `rows` would change, with who and what moves along.

    An import that moves an area moves its subtree, its devices and the reach of every account
    holding it: an area someone made with an official code of another province would carry its
    operator there. The official import therefore asks before moving (hub import areas
    --official --move-existing)."""
    from hub.store.models import Device, User, UserArea

    wanted = {r.code: r for r in rows}
    moves = []
    for area in session.scalars(select(Area).where(Area.code.in_(list(wanted))).order_by(Area.path)):
        row = wanted[area.code]
        if area.parent_code == row.parent_code:
            continue
        below = select(Area.code).where(Area.path.startswith(area.path, autoescape=True))
        names = tuple(session.scalars(select(User.name).join(UserArea, UserArea.user_id == User.id)
                                      .where(UserArea.area_code.in_(below)).distinct().order_by(User.name)))
        devices = session.scalar(select(func.count()).select_from(Device)
                                 .where(Device.area_code.in_(below))) or 0
        moves.append(Move(area.code, area.name, area.type, area.parent_code, row.parent_code, names, devices))
    return moves


def import_areas(session: Session, rows: Iterable[AreaRow]) -> int:
    """Insert or update areas, parents before children; returns how many rows were written.

    A parent may already be in the database or anywhere in `rows`.
    """
    pending = {}
    for i, r in enumerate(rows, 1):
        if not r.code or not r.name:
            raise AreaError(f"area row {i}: code and name are required")
        if r.parent_code == r.code:
            raise AreaError(f"area {r.code}: cannot be its own parent")
        pending[r.code] = r
    existing = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(list(pending))))}
    parents_needed = {r.parent_code for r in pending.values() if r.parent_code and r.parent_code not in pending}
    known = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(list(parents_needed))))}
    missing = sorted(parents_needed - known.keys())
    if missing:
        raise AreaError(f"unknown parent_code {missing[0]} (not in the file nor in the database)")
    paths = {code: (a.path, a.level) for code, a in known.items()}
    written = 0
    remaining = dict(pending)
    while remaining:
        progressed = False
        for code, r in list(remaining.items()):
            if r.parent_code and r.parent_code not in paths:
                continue
            parent_path, parent_level = paths[r.parent_code] if r.parent_code else ("/", -1)
            path, level = f"{parent_path}{code}/", parent_level + 1
            area = existing.get(code)
            if area is None:
                session.add(Area(code=code, name=r.name, type=r.type, parent_code=r.parent_code, path=path,
                                 level=level))
            else:
                if area.path != path:
                    _move_subtree(session, area.path, path, level - area.level)
                area.name, area.type, area.parent_code, area.path, area.level = r.name, r.type, r.parent_code, path, level
            paths[code] = (path, level)
            del remaining[code]
            written += 1
            progressed = True
        if not progressed:
            raise AreaError(f"areas form a cycle through {', '.join(sorted(remaining)[:5])}")
    session.flush()
    return written


def _move_subtree(session: Session, old: str, new: str, level_shift: int) -> None:
    for a in session.scalars(select(Area).where(Area.path.startswith(old, autoescape=True), Area.path != old)):
        a.path = new + a.path[len(old):]
        a.level += level_shift


def subtree_paths(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Code → path for the given codes; raises AreaError naming the first unknown code."""
    codes = list(dict.fromkeys(codes))
    found = dict(session.execute(select(Area.code, Area.path).where(Area.code.in_(codes))).all())
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise AreaError(f"unknown area code {unknown[0]}")
    return found


def under_any(column, paths: Iterable[str]):  # noqa: ANN001, ANN201
    """SQL condition: an Area.path column lies in the subtree of any of `paths`."""
    # autoescape: codes may contain "_" or "%", which LIKE would treat as wildcards
    return or_(*[column.startswith(p, autoescape=True) for p in paths])
