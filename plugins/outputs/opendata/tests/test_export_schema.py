"""The open-data export validates against its published schema (issue 21's Done-when), checked by
`frictionless`, the Table Schema authors' own validator, on the files as a harvester finds them."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import frictionless

from hub_output_opendata.plugin import OpenDataOutput
from hub_output_opendata.rows import field_names, schema_text
from hub_output_opendata.testing import NOW, StatisticsContext


def _report(path: Path) -> frictionless.Report:
    return frictionless.validate(str(path))


def test_the_export_validates_against_its_published_schema(output: OpenDataOutput, published: Path) -> None:
    output.run_periodic(NOW)
    report = _report(published / "datapackage.json")
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    # every period and format is a resource the validator read, four areas each
    names = {task.name: task.stats["rows"] for task in report.tasks}
    assert "statistics-day-2025-09-01-csv" in names and "statistics-month-2025-08-json" in names
    assert set(names.values()) == {4}
    assert len(names) == 3 * 3 * 2  # day, week, month × 3 catch-up periods × csv, json
    # the schema published beside the data is the one the package ships and documents
    assert (published / "schema.json").read_text(encoding="utf-8") == schema_text()
    package = json.loads((published / "datapackage.json").read_text(encoding="utf-8"))
    assert {r["schema"] for r in package["resources"]} == {"schema.json"}
    assert package["licenses"][0]["name"] == "CC-BY-4.0"


def test_a_file_that_breaks_the_schema_is_caught(output: OpenDataOutput, published: Path) -> None:
    # the validation above is worth something only if it fails on a wrong figure
    output.run_periodic(NOW)
    day = published / "day" / "2025-09-01.csv"
    day.write_bytes(day.read_bytes().replace(b",97.5,", b",197.5,"))
    report = _report(published / "datapackage.json")
    assert not report.valid
    assert [e[1:] for e in report.flatten(["rowNumber", "fieldName", "type"])] == \
        [["uptime_percent", "constraint-error"]]


def test_excel_reads_vietnamese_names_and_the_json_says_the_same(output: OpenDataOutput, published: Path) -> None:
    output.run_periodic(NOW)
    raw = (published / "day" / "2025-09-01.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["area_name"] for r in table] == ["Tỉnh Long An", "Huyện Đức Hòa", "Xã Hựu Thạnh", "Thị trấn Hậu Nghĩa"]
    hau_nghia = table[3]
    assert hau_nghia["bulletins_emergency"] == "1" and hau_nghia["bulletins_priority"] == "0"
    assert hau_nghia["delivery_success_percent"] == "92.59" and hau_nghia["emergency_reach_percent"] == "83.33"
    assert table[0]["parent_code"] == ""  # the province has none: the schema's missing value
    as_json = json.loads((published / "day" / "2025-09-01.json").read_text(encoding="utf-8"))
    assert [list(r) for r in as_json] == [list(field_names())] * 4
    assert as_json[0]["parent_code"] is None
    assert [str(r["bulletins"]) for r in as_json] == [r["bulletins"] for r in table]


def test_nothing_personal_is_published(output: OpenDataOutput, published: Path) -> None:
    output.run_periodic(NOW)
    for path in published.rglob("*.*"):
        text = path.read_text(encoding="utf-8-sig")
        assert "Nguyễn Văn An" not in text and "10.80.3.7" not in text, path
    assert not {"operator_name", "device_address"} & set(field_names())


def test_periods_are_the_provinces_days_weeks_and_months(published: Path, context: StatisticsContext) -> None:
    out = OpenDataOutput.configured({"directory": str(published), "settle_s": 0, "catch_up": 1})
    out.open(context)
    out.run_periodic(NOW)  # 00:30 on 2 September in Asia/Ho_Chi_Minh, 17:30 on 1 September UTC
    utc = timezone.utc
    assert sorted(context.calls) == sorted([
        (datetime(2025, 7, 31, 17, tzinfo=utc), datetime(2025, 8, 31, 17, tzinfo=utc), None),  # August
        (datetime(2025, 8, 24, 17, tzinfo=utc), datetime(2025, 8, 31, 17, tzinfo=utc), None),  # week 35, Mon-Sun
        (datetime(2025, 8, 31, 17, tzinfo=utc), datetime(2025, 9, 1, 17, tzinfo=utc), None),   # 1 September
    ])
    month = list(csv.DictReader(io.StringIO((published / "month" / "2025-08.csv").read_text("utf-8-sig"))))
    assert (month[0]["period"], month[0]["period_start"], month[0]["period_end"]) == ("month", "2025-08-01",
                                                                                       "2025-08-31")


def test_a_period_is_published_once_and_only_after_it_settles(published: Path, context: StatisticsContext) -> None:
    out = OpenDataOutput.configured({"directory": str(published), "periods": ["day"], "catch_up": 1,
                                     "settle_s": 3600})
    out.open(context)
    out.run_periodic(NOW)  # half an hour after 1 September ended: the day before is reported
    assert [p.name for p in (published / "day").iterdir() if p.suffix == ".csv"] == ["2025-08-31.csv"]
    out.run_periodic(NOW.replace(hour=18, minute=45))  # settled now
    out.run_periodic(NOW.replace(hour=19))
    assert sorted(p.name for p in (published / "day").iterdir()) == [
        "2025-08-31.csv", "2025-08-31.json", "2025-09-01.csv", "2025-09-01.json"]
    assert len(context.calls) == 2  # each day read once
    (published / "day" / "2025-09-01.json").unlink()  # deleted: made anew
    out.run_periodic(NOW.replace(hour=19))
    assert (published / "day" / "2025-09-01.json").exists() and len(context.calls) == 3


def test_old_periods_are_pruned_and_the_package_follows(published: Path, context: StatisticsContext) -> None:
    out = OpenDataOutput.configured({"directory": str(published), "periods": ["day"], "catch_up": 5,
                                     "keep": 2, "settle_s": 0, "formats": ["csv"]})
    out.open(context)
    out.run_periodic(NOW)
    assert sorted(p.name for p in (published / "day").iterdir()) == ["2025-08-31.csv", "2025-09-01.csv"]
    package = json.loads((published / "datapackage.json").read_text(encoding="utf-8"))
    assert [r["path"] for r in package["resources"]] == ["day/2025-09-01.csv", "day/2025-08-31.csv"]
    assert _report(published / "datapackage.json").valid


def test_an_area_subtree_is_published_alone(published: Path, context: StatisticsContext) -> None:
    out = OpenDataOutput.configured({"directory": str(published), "periods": ["month"], "catch_up": 1,
                                     "settle_s": 0, "area_code": "794"})
    out.open(context)
    out.run_periodic(NOW)
    assert {c[2] for c in context.calls} == {"794"}
    month = json.loads((published / "month" / "2025-08.json").read_text(encoding="utf-8"))
    assert [r["area_code"] for r in month] == ["794", "27595", "27598"]
    assert _report(published / "datapackage.json").valid
