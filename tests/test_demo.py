"""`make demo`'s story, run as a person runs it: the simulated fleet, the morning programme, the CAP
storm warning from the demo's local feed pre-empting it on exactly the speakers of the communes it
names, the programme resuming (as the as-run log shows), the console with the emergency in it, and
Ctrl-C leaving nothing behind — no retained message on a shared broker, no process, no file."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
import requests

from hub.devkit.embedded import answers
from hub.ports import free_port
from tests.support.services import MQTT_HOST, MQTT_PORT

pytestmark = pytest.mark.slow
DEMO_SOURCE = Path(__file__).parents[1] / "hub" / "devkit"


def demo_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("HUB_")}, "PYTHONFAULTHANDLER": "1"}


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
        if text in cmd and "pytest" not in cmd:
            found.append(cmd)
    return found


def assert_story(out: str) -> None:
    assert re.search(r"\[1\].*\n.*The simulated Long An fleet is up: (\d+)/\1 speaker clusters", out), out[-3000:]
    assert "[2] Chương trình buổi sáng" in out and "playing on" in out
    assert "A CAP storm warning arrives from the local feed http://127.0.0.1:" in out
    assert "demo-editor submits, demo-approver approves and publishes; spoken offline" in out
    m = re.search(r"pre-empted on exactly the (\d+) speakers of the warned communes; the other (\d+) played on", out)
    assert m and int(m.group(1)) > 0, out[-3000:]
    assert f"the programme resumes on {m.group(1)}/{m.group(1)} speakers" in out
    as_run = re.search(r"as-run (TN-SPK-\d+):\n(.*)\n(.*)\n(.*)\n", out)
    assert as_run, out[-3000:]
    cut, alert, resumed = as_run.group(2, 3, 4)
    assert "normal" in cut and "interrupted by emergency" in cut and "Bản tin sáng" in cut
    assert "emergency" in alert and "bão" in alert.lower()
    assert "normal" in resumed and "resumed" in resumed and "Bản tin sáng" in resumed


def test_the_story_runs_to_the_end_on_the_embedded_default(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hub.cli", "demo", "--embedded", "--once", "--port", str(free_port()),
                        "--speakers", "40", "--boards", "1"], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=demo_env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "jobs: fakeredis" in r.stdout and "MQTT: embedded" in r.stdout
    assert_story(r.stdout)
    assert "went offline" not in r.stdout + r.stderr
    # its accounts: generated for the run, each password printed once, none of them in the code
    found = dict(re.findall(r"^\s+(demo-\w+)\s.*password (\S+)$", r.stdout, re.M))
    assert set(found) == {"demo-admin", "demo-operator", "demo-editor", "demo-approver"}, r.stdout[:3000]
    sources = "".join(p.read_text() for p in DEMO_SOURCE.glob("demo*.py"))
    for password in found.values():
        assert len(password) >= 20 and r.stdout.count(password) == 1 and password not in sources
    files = re.search(r"^files: (\S+) \(removed on exit\)", r.stdout, re.M)
    assert files and not Path(files.group(1)).exists()
    assert list(tmp_path.iterdir()) == []
    assert not processes_mentioning(files.group(1))
    broker_port = int(re.search(r"MQTT: embedded \w+ broker at 127.0.0.1:(\d+)", r.stdout).group(1))
    assert not answers("127.0.0.1", broker_port)  # the embedded broker stopped with the demo
    assert not processes_mentioning(f"hub.devkit.embedded {broker_port}")


def retained(prefix: str, wait_s: float = 2.0) -> list[str]:
    """Topics under `prefix` that the broker still keeps a retained message for."""
    topics: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: topics.append(msg.topic) if msg.retain else None
    client.connect(MQTT_HOST, MQTT_PORT)
    client.subscribe(f"{prefix}/#")
    client.loop_start()
    time.sleep(wait_s)
    client.loop_stop()
    client.disconnect()
    return topics


def clear_retained(prefix: str) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    for topic in retained(prefix):
        client.publish(topic, b"", retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_the_console_shows_the_live_emergency_and_ctrl_c_leaves_nothing_behind(tmp_path: Path,
                                                                               services: None) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "demo", "--port", str(port), "--speakers", "30",
                             "--boards", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=demo_env())
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        out = "".join(lines)
        assert "Ctrl-C" in out, out[-3000:]
        assert "MQTT: Mosquitto at 127.0.0.1:1883" in out  # the machine's broker: shared, so it must be left clean
        assert_story(out)
        prefix = re.search(r"topics (\S+)/…", out).group(1)
        assert retained(prefix, 1.0), "the running fleet's presence should be retained while it runs"
        live = re.search(r"watch it live: (http://\S+/console/commands/(\w+))", out)
        assert live and f"http://127.0.0.1:{port}/console/" in out
        password = re.search(r"^\s+demo-admin\s.*password (\S+)$", out, re.M).group(1)
        web = requests.Session()
        r = web.post(f"http://127.0.0.1:{port}/api/auth/login", json={"name": "demo-admin", "password": password},
                     timeout=10)
        assert r.status_code == 200, r.text
        page = web.get(live.group(1), timeout=10)
        # the emergency's deliveries, device by device, in the communes the warning names
        assert page.status_code == 200 and "Xã Cần Giuộc" in page.text and "Cụm loa" in page.text, page.text
        overview = web.get(f"http://127.0.0.1:{port}/console/", timeout=10)
        assert overview.status_code == 200 and live.group(2) in overview.text  # among the emergencies running
        children = children_of(proc.pid)

        proc.send_signal(signal.SIGINT)
        try:
            rest, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            # PYTHONFAULTHANDLER (demo_env): SIGABRT makes the demo print every thread's stack,
            # so a tear-down that hangs says where
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail("the demo did not stop within 60 s of Ctrl-C; where its threads were:\n" + err[-12000:])
    finally:
        if proc.poll() is None or proc.returncode == -signal.SIGABRT:  # failed while the demo ran:
            proc.kill()  # clean the shared broker for it
            proc.wait()
            found = re.search(r"topics (\S+)/…", "".join(lines))
            if found:
                clear_retained(found.group(1))
    assert proc.returncode == 0, err[-3000:]
    assert "stopped, nothing left behind" in rest
    assert "went offline" not in rest + err and "Traceback" not in err, (rest + err)[-3000:]
    assert len((rest + err).strip().splitlines()) <= 3, rest + err  # quiet: no flood of lines
    assert retained(prefix) == []
    if "jobs: Redis at redis://127.0.0.1:6379/0" in out:  # the machine's Redis: shared too
        run = prefix.rsplit("/", 1)[1]
        assert list(redis.Redis(port=6379).scan_iter(match=f"*demo-{run}*", count=1000)) == []
    assert not [c for c in children if Path(f"/proc/{c}").exists()]
    files = re.search(r"^files: (\S+) \(removed on exit\)", out, re.M).group(1)
    assert not Path(files).exists() and not processes_mentioning(files)
