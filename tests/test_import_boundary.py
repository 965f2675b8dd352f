"""The core never imports a plugin: plugins depend on the hub, not the other way round."""
from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[1] / "hub"
PLUGIN_PACKAGES = {"plugins"}


def _plugin_packages() -> set[str]:
    """Top-level import names of every distribution under plugins/ and of the conformance suite."""
    names = set(PLUGIN_PACKAGES)
    for init in [*(HUB.parent / "plugins").glob("*/*/*/__init__.py"), *(HUB.parent / "conformance").glob("*/__init__.py")]:
        names.add(init.parent.name)
    return names


def plugin_imports(root: Path, forbidden: set[str]) -> list[str]:
    """Every import of a plugin package by a module of the package at `root`."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(root.parent)}:{node.lineno} imports {m}"
                          for m in mods if m.split(".")[0] in forbidden]
    return offenders


def test_no_hub_module_imports_a_plugin() -> None:
    assert plugin_imports(HUB, _plugin_packages()) == []


def test_the_check_catches_a_planted_plugin_import(tmp_path: Path) -> None:
    planted = tmp_path / "hub" / "delivery"
    planted.mkdir(parents=True)
    (planted / "jobs.py").write_text("def send():\n    from hub_mqtt_speaker.adapter import MqttSpeakerAdapter\n")
    (tmp_path / "hub" / "plugins.py").write_text("import plugins.vendors\n")
    assert plugin_imports(tmp_path / "hub", _plugin_packages()) == [
        "hub/delivery/jobs.py:2 imports hub_mqtt_speaker.adapter", "hub/plugins.py:1 imports plugins.vendors"]


def test_the_boundary_check_sees_plugin_packages() -> None:
    # If this fails, the glob above no longer finds the built-in plugins and the test above is blind.
    assert len(_plugin_packages()) > 1
