"""`hub contents` takes a bulletin through the editorial workflow, with one-line errors naming the
rule, and `hub send` refuses a content that is not published (issue 18, item 3)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.cli import hub_cli, one_line_error
from tests.support.services import ROOT


def test_cli_takes_a_bulletin_from_draft_to_published_and_refuses_out_of_order(config_file: Path) -> None:
    assert hub_cli(config_file, "init-db").returncode == 0
    assert hub_cli(config_file, "import", "areas", str(ROOT / "tests/data/legacy-three-level.yaml")).returncode == 0
    devices = config_file.parent / "d.csv"
    devices.write_text("id,vendor,kind,area_code,address\nSPK-1,mqtt_speaker,speaker,27694,spk-1\n", encoding="utf-8")
    assert hub_cli(config_file, "import", "devices", str(devices)).returncode == 0
    r = hub_cli(config_file, "contents", "add", "--title", "Lịch tiêm", "--kind", "tts_text", "--body", "Thông báo.",
                "--area", "27694")
    assert r.returncode == 0 and "(draft)" in r.stdout, r.stderr
    cid = re.search(r"content ([0-9a-f]{32})", r.stdout).group(1)

    line = one_line_error(hub_cli(config_file, "send", "play", "--device", "SPK-1", "--content", cid))
    assert "only a published content" in line and "(rule unpublished)" in line
    line = one_line_error(hub_cli(config_file, "contents", "publish", cid))
    assert "rule order" in line and "draft" in line
    r = hub_cli(config_file, "contents", "edit", cid, "--title", "Lịch tiêm (sửa)", "--note", "chính tả")
    assert r.returncode == 0 and "version 2" in r.stdout and "title changed" in r.stdout, r.stderr
    assert "rule stale" in one_line_error(hub_cli(config_file, "contents", "edit", cid, "--title", "X",
                                                  "--version", "1"))
    assert hub_cli(config_file, "contents", "submit", cid).returncode == 0
    assert "rule reason" in one_line_error(hub_cli(config_file, "contents", "reject", cid, "--reason", " "))
    assert hub_cli(config_file, "contents", "approve", cid).returncode == 0
    r = hub_cli(config_file, "contents", "publish", cid)
    assert r.returncode == 0 and "published" in r.stdout, r.stderr
    r = hub_cli(config_file, "send", "play", "--device", "SPK-1", "--content", cid)
    assert r.returncode == 0 and "queued 1" in r.stdout, r.stderr
    listed = hub_cli(config_file, "contents", "list", "--status", "published", "--area", "27694", "--json").stdout
    assert [json.loads(ln)["id"] for ln in listed.splitlines()] == [cid]

    r = hub_cli(config_file, "contents", "versions", cid, "--json")
    versions = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["changes"] == {"title": ["Lịch tiêm", "Lịch tiêm (sửa)"]} and versions[1]["note"] == "chính tả"
    assert versions[1]["changed_by"].startswith("cli:")
    assert "archived" in hub_cli(config_file, "contents", "archive", cid, "--reason", "hết hạn").stdout
    assert "(rule unpublished)" in one_line_error(hub_cli(config_file, "send", "play", "--device", "SPK-1",
                                                          "--content", cid))
