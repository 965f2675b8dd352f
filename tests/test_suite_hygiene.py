"""Every test module stands on its own: none imports another test module (test_*.py) or a
conftest.py. Importing one runs its tests twice, or makes a test depend on a module pytest may
import under another name (a conftest is imported by pytest itself); shared helpers live in
tests/support/, and fixtures in a conftest.py or hub.testing_fixtures."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def suite_folders() -> list[Path]:
    """Every folder of tests in the repository: the hub's, the conformance suite's, each plugin's."""
    return [ROOT / "tests", ROOT / "conformance" / "tests", *sorted(ROOT.glob("plugins/*/*/tests"))]


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def imports_of_test_modules(path: Path) -> list[str]:
    """`file:line imports name` for each import in `path` that names a test module or a conftest
    (`import tests.test_api`, `from tests.test_cli import ROOT`, `from tests import test_cli`,
    `from test_profiles_mqtt import BOARD`, `from .conftest import x`, `from . import conftest`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] if base else []
            names += [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        else:
            continue
        named = [name for name in names if any(_is_test_module(part) for part in name.split("."))]
        if named:  # one offence an import statement: the module it names first
            found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno} "
                         f"imports {named[0]}")
    return found


def test_no_test_module_imports_another_test_module() -> None:
    offences = [offence for tree in suite_folders() for path in sorted(tree.rglob("*.py"))
                for offence in imports_of_test_modules(path)]
    assert offences == [], "move what is shared to tests/support/ or a conftest fixture:\n" + "\n".join(offences)


def test_the_scan_sees_every_suite() -> None:
    # If this fails, the globs above no longer find the suites and the test above is blind.
    trees = suite_folders()
    assert all(t.is_dir() for t in trees)
    assert len(trees) >= 2 + 6  # the hub's, the conformance suite's, and the six built-in plugins'


@pytest.mark.parametrize("line", [
    "from tests.test_api import assert_error",
    "import tests.test_cli",
    "from tests import test_cli",
    "from tests.faults.conftest import free_port",
    "from test_profiles_mqtt import BOARD",
    "from . import conftest",
    "from .conftest import OWN",
    "def later():\n    from tests.test_accounts import hub",
])
def test_the_scan_refuses_a_planted_import_of_a_test_module(tmp_path: Path, line: str) -> None:
    planted = tmp_path / "test_planted.py"
    planted.write_text(f"from __future__ import annotations\n\nimport os\n{line}\n", encoding="utf-8")
    assert len(imports_of_test_modules(planted)) == 1


def test_the_scan_lets_helpers_and_fixture_modules_through(tmp_path: Path) -> None:
    clean = tmp_path / "test_clean.py"
    clean.write_text("from tests.support.api import assert_error\nfrom tests.support import loopback_vendor\n"
                     "from hub.testing_fixtures import broker\nfrom profiles_helpers import BOARD\n"
                     "import contest_results\n", encoding="utf-8")
    assert imports_of_test_modules(clean) == []
