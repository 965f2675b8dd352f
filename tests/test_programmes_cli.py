"""`hub programmes`: add from flags, list, show, occurrences in local time, export to .ics and
import it back, delete; refusals are one line naming the field."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.cli import hub_cli, one_line_error
from tests.support.programmes import next_monday, week_calendars
from tests.support.services import ROOT


def test_cli_keeps_programmes_and_round_trips_ics(config_file: Path) -> None:
    assert hub_cli(config_file, "init-db").returncode == 0
    assert hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    devices = config_file.parent / "d.csv"
    devices.write_text("id,vendor,kind,area_code,address\nSPK-1,mqtt_speaker,speaker,27694,spk-1\n", encoding="utf-8")
    assert hub_cli(config_file, "import", "devices", str(devices)).returncode == 0
    r = hub_cli(config_file, "contents", "add", "--title", "Thời sự", "--kind", "audio_file", "--uri",
                "http://127.0.0.1:9/a.mp3", "--duration", "600", "--area", "27694", "--publish")
    cid = re.search(r"content ([0-9a-f]{32})", r.stdout).group(1)
    draft = re.search(r"content ([0-9a-f]{32})", hub_cli(config_file, "contents", "add", "--title", "Nháp", "--kind",
                                                         "tts_text", "--body", "x", "--area", "27694").stdout).group(1)
    monday = next_monday()
    news, _ = week_calendars(monday)
    ics = config_file.parent / "news.ics"
    ics.write_text(news, encoding="utf-8")

    line = one_line_error(hub_cli(config_file, "programmes", "add", "--name", "Tin", "--ics", str(ics), "--area",
                                  "27694", "--content", draft))
    assert "content_id" in line and "draft" in line
    line = one_line_error(hub_cli(config_file, "programmes", "add", "--name", "Tin", "--ics", str(ics), "--area",
                                  "27694", "--content", cid, "--stream", "http://127.0.0.1:9/live"))
    assert "exactly one" in line
    r = hub_cli(config_file, "programmes", "add", "--name", "Thời sự", "--ics", str(ics), "--area", "27694",
                "--content", cid)
    assert r.returncode == 0, r.stderr
    pid = re.search(r"programme ([0-9a-f]{32}) created", r.stdout).group(1)
    assert pid in hub_cli(config_file, "programmes", "list", "--area", "27694").stdout
    assert json.loads(hub_cli(config_file, "programmes", "show", pid).stdout)["area_code"] == "27694"
    occ = hub_cli(config_file, "programmes", "occurrences", pid, "--from", monday.date().isoformat(),
                  "--to", monday.date().isoformat() + "T23:59").stdout.splitlines()
    assert [ln.split()[0][11:16] for ln in occ] == ["06:00", "17:00"] and occ[0].split()[0].endswith("+07:00")

    line = one_line_error(hub_cli(config_file, "programmes", "add", "--name", "Lặp", "--ics", str(ics), "--device",
                                  "SPK-1", "--content", cid))
    assert "overlap" in line and "device SPK-1" in line
    exported = hub_cli(config_file, "programmes", "export", "--area", "27694")
    assert exported.returncode == 0 and "RECURRENCE-ID" in exported.stdout
    out = config_file.parent / "out.ics"
    out.write_text(exported.stdout, encoding="utf-8")
    r = hub_cli(config_file, "programmes", "delete", pid)
    assert r.returncode == 0 and "deleted" in r.stdout, r.stderr
    r = hub_cli(config_file, "programmes", "import", str(out), "--target", "27694", "--content", cid)
    assert r.returncode == 0 and "Thời sự" in r.stdout, r.stderr
    new = re.search(r"programme ([0-9a-f]{32}) imported", r.stdout).group(1)
    again = hub_cli(config_file, "programmes", "occurrences", new, "--from", monday.date().isoformat(),
                    "--to", monday.date().isoformat() + "T23:59").stdout.splitlines()
    assert again == occ
    bad = config_file.parent / "bad.ics"
    bad.write_text("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n", encoding="utf-8")
    line = one_line_error(hub_cli(config_file, "programmes", "import", str(bad), "--target", "27694", "--content", cid))
    assert "ics" in line and "UID" in line
    assert "no programme" not in one_line_error(hub_cli(config_file, "programmes", "show", "nope"))
