"""Templates with `{name}` placeholders: `{params.level}`, `{command_id}`, `{vol}`…

A small parser of our own rather than str.format: format would let a profile reach attributes
and indexes of whatever it is handed. `{{` and `}}` stand for literal braces.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


class TemplateError(ValueError):
    """The template text itself is malformed (unbalanced brace, empty or odd placeholder)."""


class RenderError(ValueError):
    """A command cannot be rendered: a value it needs is absent or does not fit."""


class Missing(RenderError):
    """The placeholder has no value in this command (an optional param, content not given)."""

    def __init__(self, name: str, why: str = "") -> None:
        super().__init__(why or f"the command carries no {name}")
        self.name = name


@dataclass(frozen=True)
class Placeholder:
    name: str


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | Placeholder] = []
        literal: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            literal.append(text[pos:m.start()])
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
                continue
            if m.group(1) is None:
                raise TemplateError(f"unbalanced {token!r} in {text!r} (write {token * 2} for a literal brace)")
            name = m.group(1).strip()
            if not NAME.match(name):
                raise TemplateError(f"bad placeholder {{{m.group(1)}}}: expected a name such as {{params.level}}")
            if literal and "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(Placeholder(name))
        literal.append(text[pos:])
        if "".join(literal):
            parts.append("".join(literal))
        return cls(text, tuple(parts))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))

    @property
    def whole(self) -> str | None:
        """The placeholder's name when the template is that one placeholder and nothing else."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return self.parts[0].name
        return None

    def render(self, lookup: Callable[[str], Any]) -> Any:
        """A lone placeholder keeps its value's type (a number stays a number in JSON); anything
        else becomes text."""
        if self.whole is not None:
            return lookup(self.whole)
        return self.render_text(lookup)

    def render_text(self, lookup: Callable[[str], Any]) -> str:
        return "".join(p if isinstance(p, str) else to_text(lookup(p.name)) for p in self.parts)

    def pattern(self, fixed: dict[str, str] | None = None, level: bool = False) -> tuple[re.Pattern[str], list[str]]:
        """A regex matching what this template renders to, and the names of its groups in order:
        how a simulator recovers values from a payload, and a listener the address from a topic.
        `fixed` names are matched literally; `level` keeps a placeholder within one topic level."""
        fixed = fixed or {}
        rx, names = [], []
        for p in self.parts:
            if isinstance(p, str):
                rx.append(re.escape(p))
            elif p.name in fixed:
                rx.append(re.escape(fixed[p.name]))
            else:
                rx.append(f"(?P<g{len(names)}>{'[^/]+' if level else '.*?'})")
                names.append(p.name)
        return re.compile("^" + "".join(rx) + "$", re.DOTALL), names


def to_text(value: Any) -> str:
    """How a value reads inside text: JSON spelling for booleans and null, so `{params.on}` in a
    topic is `true`, not Python's `True`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def coerce_scalar(text: str) -> Any:
    """Text that spells a JSON number or boolean becomes one (devices often send "16" for 16)."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return text
    return value if isinstance(value, (int, float, bool)) else text
