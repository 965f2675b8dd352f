"""No default credentials anywhere: the repository's configuration, example, deployment and
documentation files, and the hub's own code, carry no password, secret or token a deployment
could forget to change. Secrets come from the environment (${NAME}) or are generated once."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.services import ROOT

CONFIG_SUFFIXES = {".yaml", ".yml", ".conf", ".toml", ".ini", ".cfg", ".env", ".example", ".md", ".txt", ".json",
                   ".service", ".sh"}
CONFIG_NAMES = {"Makefile", "Dockerfile", "docker-compose.yml", ".env"}
MINE = ("hub/", "deploy/", "examples/", "tests/", "README.md", "Makefile")  # new files of this change, not yet tracked

WEAK = (r"(admin|administrator|root|password|passw0rd|changeme|change_me|secret|123456|12345678|hub|guest|"
        r"mosquitto|test)")
PATTERNS = {
    "user:password pair": re.compile(rf"\b(admin|root|hub|guest|user|operator)\s*:\s*{WEAK}\b(?![-\w/.])", re.I),
    "placeholder password": re.compile(r"\bchange[_-]?me\b", re.I),
    "command-line password": re.compile(rf"(?:\s-P|--password)[ =]['\"]?{WEAK}\b"),
    "weak literal password": re.compile(rf"""["']?\b(password|passwd|pwd)["']?\s*[:=]\s*["']?{WEAK}["']?\s*(,|$|}})""",
                                        re.I | re.M),
}
# In configuration files every secret-looking key must be an environment reference, or empty.
SECRET_KEY = re.compile(r"^\s*(password|passwd|secret|secret_key|api_key|token|private_key)\s*[:=]\s*(.*)$", re.I)
ALLOWED_VALUES = re.compile(r"""^(\$\{[A-Z0-9_]+\}|["']?\$\{[A-Z0-9_]+\}["']?|null|~|""|''|)\s*(#.*)?$""")
CODE_LITERAL = re.compile(r"""(?i)\b(password|secret_key|secret|token)\s*=\s*["'][^"'{}]{3,}["']""")


def repo_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    new = subprocess.run(["git", "ls-files", "-z", "--others", "--exclude-standard", "--", *MINE], cwd=ROOT,
                         capture_output=True, check=True).stdout
    names = {n for n in (tracked + new).decode().split("\0") if n}
    return sorted(ROOT / n for n in names if (ROOT / n).is_file())


def config_like(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return (path.suffix in CONFIG_SUFFIXES or path.name in CONFIG_NAMES
            or rel.startswith(("deploy/", "examples/"))) and not rel.startswith("schemas/")


def test_no_default_credentials_in_config_example_and_doc_files() -> None:
    found = []
    checked = 0
    for path in filter(config_like, repo_files()):
        text = path.read_text(encoding="utf-8", errors="replace")
        checked += 1
        rel = path.relative_to(ROOT)
        for what, pattern in PATTERNS.items():
            for m in pattern.finditer(text):
                found.append(f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {what}: {m.group(0).strip()}")
        if path.suffix in {".yaml", ".yml", ".ini", ".cfg", ".env", ".toml", ".conf"}:
            for n, line in enumerate(text.splitlines(), 1):
                m = SECRET_KEY.match(line)
                if m and not ALLOWED_VALUES.match(m.group(2).strip()):
                    found.append(f"{rel}:{n}: literal secret (use ${{ENV_VAR}}): {line.strip()}")
    assert checked >= 5, "the scan found almost nothing to read: is this a git checkout?"
    assert found == [], "\n".join(found)


def test_the_hub_code_has_no_password_literal() -> None:
    found = []
    for path in (ROOT / "hub").rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if CODE_LITERAL.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_the_patterns_catch_what_they_are_for() -> None:
    """The scan above is only as good as its patterns: they must fire on the classics."""
    for bad in ("admin:admin", "mosquitto_pub -u hub -P hub", "password: changeme", '"password": "admin"',
                "PASSWORD=secret", "root:123456"):
        assert any(p.search(bad) for p in PATTERNS.values()), bad
    assert SECRET_KEY.match("password: hunter2") and not ALLOWED_VALUES.match("hunter2")
    assert ALLOWED_VALUES.match("${HUB_MQTT_PASSWORD}") and ALLOWED_VALUES.match("${HUB_SECRET_KEY}  # from env")
    assert CODE_LITERAL.search('create_user(s, a, "x", password="admin123")')
