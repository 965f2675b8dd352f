"""What a CAP message becomes: the OASIS examples, message types, statuses, languages, classes, areas."""
from __future__ import annotations

import json
import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hub.plugins import Plugins
from hub.source import SourceError

from hub_source_cap.message import CapError
from hub_source_cap.plugin import CapSource, read_alert

from cap_source_helpers import OASIS, alert_xml, area_xml, info_xml


def oasis(n: int, **config: object) -> object:
    data = (Path(OASIS) / f"oasis-cap12-example{n}.xml").read_bytes()
    return read_alert(data, {"admin_code_names": "SAME", **config}, url=f"example{n}").item


def test_the_plugin_is_installed_under_hub_sources() -> None:
    plugins = Plugins()
    plugins.load_entry_points()
    assert plugins.source("cap") is CapSource
    assert not [p for p in plugins.problems if "cap" in p]


def test_oasis_example1_homeland_security_is_an_emergency_for_the_default_area() -> None:
    item = oasis(1)
    assert item.external_id == "hsas@dhs.gov,43b080713727"
    assert (item.severity, item.language, item.category) == ("emergency", "en-US", "Security")
    assert item.title == "Homeland Security Sets Code ORANGE"
    assert item.text.startswith("The Department of Homeland Security") and "A High Condition" in item.text
    # only an areaDesc: nothing selects devices, so the hub uses the source's default area
    assert (item.area_codes, item.polygons, item.circles) == ((), (), ())
    assert item.raw["area_desc"] == ["U.S. nationwide and interests worldwide"]
    assert item.published_at == datetime(2003, 4, 2, 14, 39, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert item.attachments[0].media_type == "image/gif"
    json.dumps(item.raw)  # the whole message summary is storable


def test_oasis_example2_thunderstorm_has_polygon_geocodes_and_expiry() -> None:
    item = oasis(2)
    assert (item.severity, item.language) == ("emergency", "en-US")
    assert item.area_codes == ("006109", "006009", "006003")
    assert item.polygons == (((38.47, -120.14), (38.34, -119.95), (38.52, -119.74), (38.62, -119.89),
                              (38.47, -120.14)),)
    assert item.expires_at == datetime(2003, 6, 17, 16, 0, tzinfo=timezone(timedelta(hours=-7)))
    assert item.text.endswith("TAKE COVER IN A SUBSTANTIAL SHELTER UNTIL THE STORM PASSES.")


def test_geocodes_count_as_areas_only_under_the_configured_value_names() -> None:
    item = oasis(2, admin_code_names=["ADMIN_CODE", "vn-admin-code"])
    assert item.area_codes == () and item.polygons  # SAME codes are US counties, not Vietnamese units
    assert {"valueName": "SAME", "value": "006109"} in item.raw["other_geocodes"]


def test_oasis_example3_earthquake_update_replaces_the_referenced_alert() -> None:
    item = oasis(3)
    assert item.severity == "normal"  # Past / Minor / Observed
    assert item.circles == ((32.9525, -115.5527, 0.0),)
    assert item.replaces == ("trinet@caltech.edu,TRI13970876.1",)
    assert item.withdraws == ()


def test_oasis_example4_amber_alert_picks_the_first_info_when_none_is_vietnamese() -> None:
    item = oasis(4)
    assert (item.severity, item.language, item.title) == ("emergency", "en-US", "Amber Alert in Los Angeles County")
    assert item.area_codes == ("006037",)
    assert item.raw["languages"] == ["en-US", "es-US"]


def test_vietnamese_info_is_picked_before_english() -> None:
    english = info_xml(language="en-US", headline="Typhoon No. 3 makes landfall", description="Stay inside.")
    vietnamese = info_xml(language="vi-VN", areas=[area_xml(geocodes=[("ADMIN_CODE", "00097")]),
                                                   area_xml("Xã Tây Hồ", geocodes=[("ADMIN_CODE", "00103")])])
    item = read_alert(alert_xml(infos=[english, vietnamese])).item
    assert (item.language, item.title) == ("vi-VN", "Cảnh báo bão số 3 đổ bộ")
    assert item.text == "Bão số 3 đang tiến vào đất liền, gió giật cấp 12.\n\nNgười dân ở trong nhà, tránh xa bờ biển."
    assert item.area_codes == ("00097", "00103")
    assert item.raw["chosen_info"] == 1


def test_vietnamese_text_is_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Bão số 3")
    assert decomposed != "Bão số 3"
    item = read_alert(alert_xml(infos=[info_xml(headline=decomposed)])).item
    assert item.title == unicodedata.normalize("NFC", "Bão số 3")


def test_update_replaces_and_cancel_withdraws_without_being_a_bulletin() -> None:
    ref = "canhbao@kttv.gov.vn,VN-KTTV-2026-001,2026-12-05T08:00:00+07:00"
    update = read_alert(alert_xml(identifier="VN-KTTV-2026-002", msg_type="Update", references=ref)).item
    assert update.replaces == ("canhbao@kttv.gov.vn,VN-KTTV-2026-001",) and update.severity == "emergency"
    cancel = read_alert(alert_xml(identifier="VN-KTTV-2026-003", msg_type="Cancel", references=ref,
                                  note="Bão đã tan", infos=[])).item
    assert cancel.withdraws == ("canhbao@kttv.gov.vn,VN-KTTV-2026-001",)
    assert cancel.replaces == () and cancel.severity is None and cancel.title == "Bão đã tan"
    # the id of the alert the Cancel withdraws is exactly the id the first alert was given
    assert read_alert(alert_xml()).item.external_id == cancel.withdraws[0]


def test_cancel_is_honoured_whatever_its_scope_and_a_bare_cancel_withdraws_nothing() -> None:
    ref = "canhbao@kttv.gov.vn,VN-KTTV-2026-001,2026-12-05T08:00:00+07:00"
    assert read_alert(alert_xml(msg_type="Cancel", scope="Restricted", references=ref)).item.withdraws
    reading = read_alert(alert_xml(msg_type="Cancel"))
    assert reading.item is None and "withdraws nothing" in reading.note


@pytest.mark.parametrize("msg_type", ["Ack", "Error"])
def test_ack_and_error_give_no_item_but_a_note(msg_type: str) -> None:
    reading = read_alert(alert_xml(msg_type=msg_type, references="a@b,X1,2026-12-05T07:00:00+07:00", infos=[]))
    assert reading.item is None and msg_type in reading.note


@pytest.mark.parametrize("status", ["Exercise", "Test", "Draft"])
def test_exercise_test_and_draft_are_marked_exercise(status: str) -> None:
    assert read_alert(alert_xml(status=status)).item.exercise is True


def test_actual_is_not_an_exercise_and_system_is_skipped() -> None:
    assert read_alert(alert_xml()).item.exercise is False
    reading = read_alert(alert_xml(status="System"))
    assert reading.item is None and "System" in reading.note


def test_restricted_and_private_scopes_are_skipped_unless_configured() -> None:
    reading = read_alert(alert_xml(scope="Restricted"))
    assert reading.item is None and "scope Restricted" in reading.note
    assert read_alert(alert_xml(scope="Restricted"), {"scopes": ["Public", "Restricted"]}).item is not None


def test_expires_before_sent_is_refused_naming_the_line() -> None:
    data = alert_xml(infos=[info_xml(expires="2026-12-05T07:00:00+07:00")])
    with pytest.raises(CapError, match=r"line \d+: expires 2026-12-05T07:00:00\+07:00 is before sent") as exc:
        read_alert(data)
    assert exc.value.line == data.decode().splitlines().index(
        next(line for line in data.decode().splitlines() if "<expires>" in line)) + 1


def test_default_class_table() -> None:
    def cls(u: str, s: str, c: str) -> str:
        return read_alert(alert_xml(infos=[info_xml(urgency=u, severity=s, certainty=c)])).item.severity
    assert cls("Immediate", "Extreme", "Observed") == "emergency"
    assert cls("Immediate", "Severe", "Likely") == "emergency"
    assert cls("Expected", "Extreme", "Likely") == "emergency"
    assert cls("Expected", "Severe", "Likely") == "priority"
    assert cls("Immediate", "Moderate", "Possible") == "priority"
    assert cls("Future", "Severe", "Likely") == "priority"
    assert cls("Immediate", "Minor", "Observed") == "normal"
    assert cls("Unknown", "Unknown", "Unknown") == "normal"


def test_the_class_table_is_configurable_and_checked() -> None:
    table = [{"class": "emergency", "urgency": "*", "severity": ["Moderate"], "certainty": "*"}]
    data = alert_xml(infos=[info_xml(severity="Moderate", urgency="Future")])
    item = read_alert(data, {"class_table": table}).item
    assert item.severity == "emergency" and item.raw["classification"][0]["rule"] == 0
    with pytest.raises(SourceError, match=r"class_table\[0\]: severity \['Bad'\]"):
        read_alert(data, {"class_table": [{"class": "emergency", "severity": ["Bad"]}]})
    with pytest.raises(SourceError, match="class_table"):
        CapSource.configured({"url": "http://127.0.0.1:1/", "class_table": [{"class": "loud"}]})


def test_polygon_and_circle_become_shapes() -> None:
    area = area_xml(polygons=["21.05,105.80 21.06,105.84 21.03,105.85 21.05,105.80"],
                    circles=["21.0285,105.8542 2.5"], geocodes=[])
    item = read_alert(alert_xml(infos=[info_xml(areas=[area])])).item
    assert item.polygons == (((21.05, 105.80), (21.06, 105.84), (21.03, 105.85), (21.05, 105.80)),)
    assert item.circles == ((21.0285, 105.8542, 2.5),)
    assert item.area_codes == () and item.raw["areas_unresolved"] is False


def test_an_unreadable_shape_refuses_the_message_rather_than_widening_it() -> None:
    area = area_xml(polygons=["21.05,105.80 not-a-point 21.03,105.85"], geocodes=[])
    with pytest.raises(CapError, match="polygon: 'not-a-point' is not latitude,longitude"):
        read_alert(alert_xml(infos=[info_xml(areas=[area])]))
    with pytest.raises(CapError, match="circle radius '-1'"):
        read_alert(alert_xml(infos=[info_xml(areas=[area_xml(circles=["21.0,105.8 -1"], geocodes=[])])]))


def test_areas_nobody_understands_are_flagged() -> None:
    item = read_alert(alert_xml(infos=[info_xml(areas=[area_xml(geocodes=[("SAME", "006037")])])])).item
    assert item.raw["areas_unresolved"] is True and item.area_codes == () and item.unresolved_areas


def test_a_message_without_language_uses_the_configured_default() -> None:
    data = alert_xml(infos=[info_xml(language=None)])
    assert read_alert(data).item.language == "en-US"  # the CAP default
    assert read_alert(data, {"default_language": "vi"}).item.language == "vi"
