"""The plugin guide's code samples run, so the guide cannot drift from the hub again (issue 17,
point 7): every ```python block of docs/writing-a-plugin.md is executed on its own, and every
```yaml block is parsed (the quality file through the suite's own reader)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[tuple[int, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _BLOCK.finditer(text) if m.group(1) == lang]


def test_the_guide_has_samples() -> None:
    assert len(blocks("python")) >= 5 and len(blocks("yaml")) >= 2


@pytest.mark.parametrize("line, code", blocks("python"), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_python_sample_runs(line: int, code: str) -> None:
    namespace: dict = {"__name__": f"guide_sample_line_{line}"}
    exec(compile(code, f"{GUIDE.name}:{line}", "exec"), namespace)  # noqa: S102 - our own documentation


@pytest.mark.parametrize("line, text", blocks("yaml"), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_yaml_sample_parses(line: int, text: str, tmp_path: Path) -> None:
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"line {line}"
    if "rules" in data:
        from hub_conformance import quality

        path = tmp_path / quality.QUALITY_FILE
        path.write_text(text, encoding="utf-8")
        _claims, problems = quality.read_quality_file(path)
        assert not problems, problems
