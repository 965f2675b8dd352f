"""The house's layering rule (docs/architecture.md): a module imports only its own layer or lower.

    vocabulary (top-level contracts, capabilities, config, schemas…)
      < store < fleet < access (+ hub.runtime) < delivery < content < broadcast < reports
      < interfaces (api, cli, console, devkit) < start-up (wsgi, testing, old job paths)

Every import counts, including those inside functions: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[1] / "hub"

VOCABULARY = 0
# Sub-packages and the top-level modules that are not vocabulary; every other top-level module
# and hub/schemas/ are the vocabulary plugins import, which may import nothing above it.
LAYERS: dict[str, int] = {
    "store": 1,
    "fleet": 2,
    "access": 3,
    "runtime": 3,  # what a process holds (database, Redis, plugins, the audit key): handed to every layer above
    "delivery": 4,
    "content": 5,
    "broadcast": 6,
    "reports": 7,
    "api": 8, "cli": 8, "console": 8, "devkit": 8,
    "wsgi": 9, "testing": 9, "testing_fixtures": 9,
    # rq finds jobs enqueued by an earlier release under these paths (hub/delivery/job_paths.py)
    "jobs": 9, "due": 9, "redeliver": 9,
}
NAMES = {0: "vocabulary", 1: "store", 2: "fleet", 3: "access", 4: "delivery", 5: "content", 6: "broadcast",
         7: "reports", 8: "interfaces", 9: "start-up"}


def layer_of(module: str) -> int:
    """The layer of a dotted hub module name (`hub.delivery.ingest` → delivery)."""
    parts = module.split(".")
    return LAYERS.get(parts[1], VOCABULARY) if len(parts) > 1 else VOCABULARY


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from hub import store` imports hub.store: look at each name too
            found += [(node.lineno, f"{base}.{a.name}" if base == "hub" else base) for a in node.names]
    return [(line, name) for line, name in found if name == "hub" or name.startswith("hub.")]


def violations(root: Path = HUB) -> list[str]:
    """Every import in the package at `root` of a module from a higher layer."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        mine = layer_of(module)
        for line, imported in _imports(path, module):
            theirs = layer_of(imported)
            if theirs > mine:
                found.append(f"{path.relative_to(root.parent)}:{line} ({NAMES[mine]}) imports {imported} "
                             f"({NAMES[theirs]})")
    return found


def test_no_module_imports_from_a_higher_layer() -> None:
    assert violations() == []


def test_every_sub_package_has_a_layer() -> None:
    # a new folder under hub/ must be placed in the rule, or it would pass as vocabulary unseen
    packages = {p.parent.name for p in HUB.glob("*/__init__.py")}
    assert packages - set(LAYERS) == {"schemas"}  # hub/schemas is vocabulary: plugins import it


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "hub"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for folder in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").touch()
    return root


@pytest.mark.parametrize("planted", [
    "from hub.delivery import dispatch\n",  # store reaching up to delivery
    "import hub.api\n",
    "def lazy():\n    from hub.cli.main import cli\n",  # inside a function still counts
    "from hub import fleet\n",
    "from ..access import accounts\n",  # relative
])
def test_the_rule_catches_a_planted_violation(tmp_path: Path, planted: str) -> None:
    root = _plant(tmp_path, {"store/db.py": planted})
    assert [v.split(" imports ")[0] for v in violations(root)] == ["hub/store/db.py:" + str(planted.count("\n"))
                                                                   + " (store)"]


def test_the_rule_lets_a_layer_import_its_own_and_lower(tmp_path: Path) -> None:
    root = _plant(tmp_path, {
        "delivery/jobs.py": "from hub.store.db import Database\nfrom hub.fleet import areas\nfrom . import claims\n",
        "delivery/claims.py": "from hub.capabilities import PRIORITIES\n",
        "api/x.py": "from hub.delivery import dispatch\nfrom hub.cli import common\n",
    })
    assert violations(root) == []


def test_vocabulary_may_not_import_a_sub_package(tmp_path: Path) -> None:
    root = _plant(tmp_path, {"vendor.py": "from hub.store.models import Device\n"})
    assert violations(root) == ["hub/vendor.py:1 (vocabulary) imports hub.store.models (store)"]


def test_the_architecture_page_names_every_folder_and_only_files_that_exist() -> None:
    import re

    page = (HUB.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = {p.parent.name for p in HUB.glob("*/__init__.py")}
    assert {p for p in packages if f"`hub/{p}/`" not in page} == set()
    named = set(re.findall(r"`(hub/[\w/]+\.py)`", page))
    assert {n for n in named if not (HUB.parent / n).exists()} == set()
