"""A statistics report (hub.reports.statistics) as people file it: CSV and XLSX with Vietnamese
headers that carry their units, and a printable HTML page. All three take their columns from
`columns`, so they carry the same numbers as the JSON."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from hub.capabilities import PRIORITIES
from hub.delivery.as_run_facts import ORIGINS

LEVELS = {"province": "Tỉnh", "district": "Huyện", "commune": "Xã", "ward": "Phường", "township": "Thị trấn",
          "special_zone": "Đặc khu", "village": "Thôn/Ấp"}
CLASSES = {"normal": "thường", "priority": "ưu tiên", "emergency": "khẩn cấp"}
ORIGIN_NAMES = {"national": "trung ương", "provincial": "tỉnh", "local": "cơ sở", "unknown": "không rõ"}
NOT_PLAYED_HEADERS = ("Mã thiết bị", "Tên thiết bị", "Mã địa bàn", "Mã lệnh", "Mã nội dung", "Loại tin",
                      "Giờ dự kiến phát", "Trạng thái gửi", "Lý do")

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def _get(key: str, *sub: str) -> Callable[[dict[str, Any]], Any]:
    def get(row: dict[str, Any]) -> Any:
        v: Any = row[key]
        for k in sub:
            v = v.get(k, 0)
        return v
    return get


def columns(report: dict[str, Any]) -> list[Column]:
    """The area table's columns: (Vietnamese header with its unit, the value from a JSON row)."""
    categories = sorted({c for r in report["areas"] for c in r["bulletins_by_category"]})
    origins = list(ORIGINS) + sorted({o for r in report["areas"] for o in r["bulletins_by_origin"]} - set(ORIGINS))
    cols: list[Column] = [
        ("Mã địa bàn", _get("area_code")), ("Tên địa bàn", _get("area_name")),
        ("Cấp", lambda r: LEVELS.get(r["level"], r["level"])), ("Mã địa bàn cấp trên", _get("parent_code")),
        ("Số thiết bị", _get("devices")), ("Tỷ lệ hoạt động (%)", _get("uptime_percent")),
        ("Số bản tin", _get("bulletins")), ("Số phút phát", _get("minutes_broadcast"))]
    cols += [(f"Số bản tin {CLASSES.get(c, c)}", _get("bulletins_by_class", c)) for c in PRIORITIES]
    cols += [(f"Số phút phát tin {CLASSES.get(c, c)}", _get("minutes_by_class", c)) for c in PRIORITIES]
    cols += [(f"Số bản tin nguồn {ORIGIN_NAMES.get(o, o)}", _get("bulletins_by_origin", o)) for o in origins]
    cols += [(f"Số phút phát nguồn {ORIGIN_NAMES.get(o, o)}", _get("minutes_by_origin", o)) for o in origins]
    for c in categories:
        name = "không rõ" if c == "unknown" else c
        cols += [(f"Số bản tin chuyên mục {name}", _get("bulletins_by_category", c)),
                 (f"Số phút phát chuyên mục {name}", _get("minutes_by_category", c))]
    cols += [("Số lượt gửi lệnh", _get("deliveries")), ("Số lượt gửi thành công", _get("deliveries_acked")),
             ("Tỷ lệ gửi thành công (%)", _get("delivery_success_percent")),
             ("Số lượt gửi tin khẩn cấp", _get("emergency_targeted")),
             ("Số lượt tin khẩn cấp đã xác nhận", _get("emergency_acked")),
             ("Tỷ lệ tiếp cận tin khẩn cấp (%)", _get("emergency_reach_percent")),
             ("Thời gian xác nhận tin khẩn cấp, trung vị (giây)", _get("emergency_ack_p50_s")),
             ("Thời gian xác nhận tin khẩn cấp, p99 (giây)", _get("emergency_ack_p99_s")),
             ("Số tin đã lên lịch nhưng không phát", _get("not_played"))]
    return cols


def _not_played_rows(report: dict[str, Any]) -> list[list[Any]]:
    return [[d["device_id"], d["device_name"], d["area_code"], i["command_id"], i["content_id"],
             CLASSES.get(i["priority"], i["priority"]), i["planned_at"], i["delivery_state"], i["reason"]]
            for d in report["not_played_by_device"] for i in d["items"]]


def _title(report: dict[str, Any]) -> str:
    return f"Báo cáo thống kê thông tin cơ sở từ {report['from']} đến {report['to']}"


def to_csv(report: dict[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark (Excel then reads the Vietnamese right), one row per area."""
    out = io.StringIO()
    w = csv.writer(out)
    cols = columns(report)
    w.writerow([h for h, _ in cols])
    for r in report["areas"]:
        w.writerow(["" if (v := get(r)) is None else v for _, get in cols])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: dict[str, Any]) -> bytes:
    """Sheet "Thống kê": one row per area; "Không phát": each scheduled-but-not-played item by
    device; "Định nghĩa": what each figure counts."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Thống kê"
    ws.append([_title(report)])
    ws["A1"].font = Font(bold=True, size=13)
    cols = columns(report)
    ws.append([h for h, _ in cols])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for r in report["areas"]:
        ws.append([get(r) for _, get in cols])
    ws.freeze_panes = "C3"
    missed = wb.create_sheet("Không phát")
    missed.append(list(NOT_PLAYED_HEADERS))
    for row in _not_played_rows(report):
        missed.append(row)
    notes = wb.create_sheet("Định nghĩa")
    for key, text in report["definitions"].items():
        notes.append([key, text])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


_env = Environment(loader=PackageLoader("hub.reports", "templates"), autoescape=select_autoescape(["html"]))


def to_html(report: dict[str, Any]) -> str:
    """A page to print (A4 landscape): the area table, then the items not played by device."""
    cols = columns(report)
    rows = [(r["depth"], ["" if (v := get(r)) is None else v for _, get in cols]) for r in report["areas"]]
    return _env.get_template("statistics.html").render(
        title=_title(report), report=report, headers=[h for h, _ in cols], rows=rows,
        not_played_headers=NOT_PLAYED_HEADERS, not_played=_not_played_rows(report))
