"""The core never imports a plugin: plugins depend on the hub, not the other way round."""
from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[1] / "hub"
PLUGIN_PACKAGES = {"plugins"}


def _plugin_packages() -> set[str]:
    """Top-level import names of every distribution under plugins/."""
    names = set(PLUGIN_PACKAGES)
    for init in (HUB.parent / "plugins").glob("*/*/*/__init__.py"):
        names.add(init.parent.name)
    return names


def test_no_hub_module_imports_a_plugin() -> None:
    forbidden = _plugin_packages()
    offenders = []
    for path in HUB.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(HUB.parent)}:{node.lineno} imports {m}"
                          for m in mods if m.split(".")[0] in forbidden]
    assert offenders == []


def test_the_boundary_check_sees_plugin_packages() -> None:
    # If this fails, the glob above no longer finds the built-in plugins and the test above is blind.
    assert len(_plugin_packages()) > 1
