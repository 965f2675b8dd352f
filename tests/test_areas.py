"""Areas: the official list loads from the package, and older deeper trees load too."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.fleet.areas import AreaError, AreaRow, import_areas, official_rows, subtree_paths
from hub.store.models import Area


def test_official_list_has_34_provinces_and_3321_communes(rt) -> None:
    with rt.db.session() as s:
        import_areas(s, official_rows())
        by_type = dict(s.execute(select(Area.type, func.count()).group_by(Area.type)).all())
    assert by_type == {"province": 34, "commune": 3321}


def test_tay_ninh_holds_the_communes_of_former_long_an(rt) -> None:
    with rt.db.session() as s:
        import_areas(s, official_rows(["80"]))
        tay_ninh = s.get(Area, "80")
        communes = s.scalar(select(func.count()).select_from(Area).where(Area.parent_code == "80"))
    assert tay_ninh.name == "Tây Ninh"
    assert communes == 96


def test_three_level_data_with_villages_loads_and_subtrees_follow(rt, legacy_areas) -> None:
    with rt.db.session() as s:
        village = s.get(Area, "28099-A1")
        assert village.level == 3 and village.path == "/80/807/28099/28099-A1/"
        under_district = s.scalars(select(Area.code).where(Area.path.like(subtree_paths(s, ["794"])["794"] + "%")))
        assert sorted(under_district) == ["27694", "27697", "794"]


def test_unknown_parent_is_named(rt) -> None:
    with rt.db.session() as s, pytest.raises(AreaError, match="unknown parent_code 999"):
        import_areas(s, [AreaRow("1000", "Xã X", "commune", "999")])


def test_moving_a_district_moves_its_communes(rt, legacy_areas) -> None:
    with rt.db.session() as s:
        import_areas(s, [AreaRow("79", "Thành phố Hồ Chí Minh", "province"),
                         AreaRow("807", "Huyện Cần Đước", "district", "79")])
    with rt.db.session() as s:
        assert s.get(Area, "28099-A1").path == "/79/807/28099/28099-A1/"
