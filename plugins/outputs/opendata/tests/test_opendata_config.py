"""A wrong setting is refused when the outputs file is read, naming the key."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.config import Settings, set_settings
from hub.output import OutputError

from hub_output_opendata.plugin import OpenDataOutput
from hub_output_opendata.testing import NOW, StatisticsContext


@pytest.fixture
def hub_state(tmp_path: Path) -> Iterator[Path]:
    settings = Settings()
    settings.state_dir = str(tmp_path / "var")
    set_settings(settings)
    yield tmp_path / "var"
    set_settings(None)


@pytest.mark.parametrize(("config", "named"), [
    ({}, "directory: Missing data for required field"),
    ({"directory": "public/thong-ke"}, "directory: 'public/thong-ke': an absolute path"),
    ({"directory": "/srv/od", "periods": ["quarter"]}, "periods.0: one of day, week, month"),
    ({"directory": "/srv/od", "periods": ["day", "day"]}, "periods: a period kind is named twice"),
    ({"directory": "/srv/od", "periods": []}, "periods: "),
    ({"directory": "/srv/od", "timezone": "Asia/Sai_Gon"}, "timezone: 'Asia/Sai_Gon' is not an IANA time zone"),
    ({"directory": "/srv/od", "formats": ["xlsx"]}, "formats.0: csv or json"),
    ({"directory": "/srv/od", "settle_s": -1}, "settle_s: "),
    ({"directory": "/srv/od", "keep": 0}, "keep: "),
    ({"directory": "/srv/od", "area_code": "80; rm"}, "area_code: an area code"),
    ({"directory": "/srv/od", "dir": "/tmp"}, "dir: Unknown field"),
])
def test_a_bad_setting_is_named(config: dict[str, Any], named: str) -> None:
    with pytest.raises(OutputError, match="^output opendata: configuration: ") as caught:
        OpenDataOutput.configured(config)
    assert named in str(caught.value)


def test_the_hubs_own_state_is_never_published(hub_state: Path) -> None:
    for directory in (hub_state, hub_state.parent):
        with pytest.raises(OutputError, match="directory: .* holds the hub's own state"):
            OpenDataOutput.configured({"directory": str(directory)})
    OpenDataOutput.configured({"directory": str(hub_state / "opendata")})  # a folder of its own is fine


def test_a_file_where_the_folder_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "od").write_text("not a folder")
    with pytest.raises(OutputError, match="directory: .*od: exists and is not a folder"):
        OpenDataOutput.configured({"directory": str(tmp_path / "od")})


def test_figures_the_schema_would_refuse_are_not_published(published: Path) -> None:
    def broken(start: Any, end: Any) -> list[Any]:
        from dataclasses import replace

        from hub_output_opendata.testing import province_statistics
        rows = province_statistics(start, end)
        return [replace(rows[0], deliveries=-3), *rows[1:]]

    out = OpenDataOutput.configured({"directory": str(published), "settle_s": 0, "periods": ["day"],
                                     "catch_up": 1})
    out.open(StatisticsContext(rows=broken))
    with pytest.raises(OutputError, match=r"day:2025-09-01: .*area 794: deliveries: expected a count") as caught:
        out.run_periodic(NOW)
    assert not caught.value.transient
    assert not out.health().ok and "area 794" in str(out.health().detail)
    assert not list(published.rglob("*.csv"))
