"""Finding 4: an administrator of a commune made an area with another province's official code
as a "village" of its commune and gave an operator that area; the next `hub import areas
--official` silently moved the area, and the operator's reach, into the other province."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hub.fleet.areas import official_rows
from hub.store.models import Area
from hub.runtime import Runtime
from tests.support.cli import hub_cli, one_line_error
from tests.support.province import OWN, probe, stored


def _official_commune(province: str) -> str:
    return next(r.code for r in official_rows([province]) if r.type == "commune")


def test_an_area_administrator_cannot_create_an_official_code(province: Runtime) -> None:
    rt = province
    admin = probe(rt, "admin-own", ["administrator"], [OWN])
    before = stored(rt)
    for code in (_official_commune("01"), "01", _official_commune("80")):  # Hà Nội's, and its own province's
        r = admin.send("POST", "/api/areas", {"code": code, "name": "Thôn Mới", "type": "village",
                                              "parent_code": OWN})
        body = r.get_json()
        assert r.status_code == 422 and "code" in body["errors"]["json"], body
        assert "official" in body["message"], body
    assert stored(rt) == before
    r = admin.send("POST", "/api/areas", {"code": f"{OWN}-T1", "name": "Thôn 1", "type": "village",
                                          "parent_code": OWN})
    assert r.status_code == 201, r.get_json()


def test_the_official_import_lists_and_refuses_moves_unless_asked(cli_ready: Path, tmp_path: Path) -> None:
    hanoi = _official_commune("01")
    villages = tmp_path / "villages.csv"  # as the commune administrator's API call made it, before the fix
    villages.write_text(f"code,name,type,parent_code\n{hanoi},Thôn Giả,village,{OWN}\n", encoding="utf-8")
    assert hub_cli(cli_ready, "import", "areas", str(villages)).returncode == 0
    r = hub_cli(cli_ready, "users", "add", "op-village", "--role", "operator", "--area", hanoi, "--no-login")
    assert r.returncode == 0, r.stderr

    r = hub_cli(cli_ready, "import", "areas", "--official", "--province", "01")
    assert "--move-existing" in one_line_error(r)
    moves = [line for line in r.stdout.splitlines() if line.startswith("would move")]
    assert len(moves) == 1 and hanoi in moves[0] and "op-village" in moves[0] and f"from {OWN} to 01" in moves[0], \
        r.stdout
    from hub.config import load_settings
    from hub.store.db import Database

    db = Database(load_settings({"HUB_CONFIG": str(cli_ready)}).database_url)
    try:
        with db.session() as s:
            area = s.get(Area, hanoi)
            assert area.parent_code == OWN and area.type == "village"  # nothing moved
            assert s.scalar(select(Area.code).where(Area.code == "01")) is None  # nothing imported
        r = hub_cli(cli_ready, "import", "areas", "--official", "--province", "01", "--move-existing")
        assert r.returncode == 0, r.stderr
        assert any(line.startswith("moved") and hanoi in line for line in r.stdout.splitlines()), r.stdout
        with db.session() as s:
            area = s.get(Area, hanoi)
            assert area.parent_code == "01" and area.path == f"/01/{hanoi}/"
    finally:
        db.dispose()
