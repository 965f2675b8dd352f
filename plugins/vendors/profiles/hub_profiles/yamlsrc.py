"""YAML that remembers where every value stands, so that a profile error names file, line and field.

The profile is composed into yaml's node tree (which keeps marks) and converted into `Node`s by
hand rather than constructed: duplicate keys become errors instead of silently keeping the last.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

BOOL_TAG = "tag:yaml.org,2002:bool"
MERGE_TAG = "tag:yaml.org,2002:merge"


class ProfileLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true and false.

    YAML 1.1 reads unquoted ON, OFF, yes and no as booleans, and ON/OFF are exactly what relay
    firmware speaks; `map: {true: ON}` must mean the text ON."""


ProfileLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ProfileLoader.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


class ProfileError(ValueError):
    """One thing wrong with a profile, printed as `file:line: field: message`."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        # line 0: the problem is the file as a whole (missing, unreadable), not a place in it.
        super().__init__(f"{file}:{line}: {field}: {message}" if line else f"{file}: {field}: {message}")
        self.file, self.line, self.field, self.message = file, line, field, message


class Node:
    """A value from the profile with its place: `path` (commands.set_volume.payload) and `line`.

    Mappings hold a dict of Nodes (keys are plain values), sequences a list of Nodes, scalars a
    plain value."""

    __slots__ = ("value", "line", "path", "key_lines", "tag")

    def __init__(self, value: Any, line: int, path: str, tag: str = "",
                 key_lines: dict[Any, int] | None = None) -> None:
        self.value = value
        self.line = line
        self.path = path
        self.tag = tag
        self.key_lines = key_lines or {}

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self.value, (dict, list))

    def items(self) -> Iterator[tuple[Any, Node]]:
        return iter(self.value.items())

    def plain(self) -> Any:
        """The value as ordinary Python data (for free-form sections)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value

    def child_path(self, key: Any) -> str:
        return join(self.path, key)

    def __repr__(self) -> str:
        return f"Node({self.path or '<root>'}@{self.line}: {self.plain()!r})"


def join(path: str, key: Any) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Converter:
    def __init__(self, file: str, problems: list[ProfileError]) -> None:
        self.file = file
        self.problems = problems
        self.scalars = SafeConstructor()

    def node(self, raw: yaml.Node, path: str) -> Node:
        line = raw.start_mark.line + 1
        if isinstance(raw, MappingNode):
            return self.mapping(raw, path)
        if isinstance(raw, SequenceNode):
            return Node([self.node(item, join(path, i)) for i, item in enumerate(raw.value)], line, path, raw.tag)
        try:
            value = self.scalars.construct_object(raw, deep=True)
        except ConstructorError as exc:
            self.problems.append(ProfileError(self.file, line, path or "profile", str(exc.problem)))
            value = None
        return Node(value, line, path, raw.tag)

    def mapping(self, raw: MappingNode, path: str) -> Node:
        own: dict[Any, Node] = {}
        lines: dict[Any, int] = {}
        merged: list[tuple[Any, yaml.Node, int]] = []
        for key_node, value_node in raw.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:  # `<<: *shared` — profiles may share ack specs this way
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(ProfileError(self.file, key_line, path or "profile",
                                                  "keys must be plain values, not lists or mappings"))
                continue
            key = self.scalars.construct_object(key_node)
            if key in own:
                self.problems.append(ProfileError(self.file, key_line, path or "profile",
                                                  f"duplicate key {key} (first on line {lines[key]})"))
                continue
            own[key] = self.node(value_node, join(path, key))
            lines[key] = key_line
        for key, value_node, key_line in merged:
            if key not in own:  # keys written out beside a merge override the merged ones
                own[key] = self.node(value_node, join(path, key))
                lines[key] = key_line
        return Node(own, raw.start_mark.line + 1, path, raw.tag, lines)

    def _merge_sources(self, value_node: yaml.Node, path: str) -> list[tuple[Any, yaml.Node, int]]:
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        out: list[tuple[Any, yaml.Node, int]] = []
        for src in sources:
            if not isinstance(src, MappingNode):
                self.problems.append(ProfileError(self.file, src.start_mark.line + 1, path or "profile",
                                                  "<< must name a mapping"))
                continue
            for key_node, sub in src.value:
                if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG:
                    out.append((self.scalars.construct_object(key_node), sub, key_node.start_mark.line + 1))
        return out


def parse(text: str, file: str) -> tuple[Node | None, list[ProfileError]]:
    """The profile's node tree, or None and the reason (a syntax error carries its line)."""
    problems: list[ProfileError] = []
    try:
        raw = yaml.compose(text, Loader=ProfileLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = str(exc.problem or exc.context or "not valid YAML")
        if exc.context and exc.problem:
            what = f"{exc.problem} ({exc.context}, line {exc.context_mark.line + 1})" if exc.context_mark \
                else f"{exc.problem} ({exc.context})"
        return None, [ProfileError(file, line, "yaml", f"not valid YAML: {what}")]
    except yaml.YAMLError as exc:
        return None, [ProfileError(file, 1, "yaml", f"not valid YAML: {exc}")]
    if raw is None:
        return None, [ProfileError(file, 1, "(file)", "the profile is empty")]
    root = _Converter(file, problems).node(raw, "")
    return root, problems
