"""Reads parts of a profile's node tree into specs, recording every problem with its line and
field instead of stopping at the first: a technician fixes a profile in one pass."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hub.schemas.status import REPORTED_PATHS

from hub_profiles.context import Known
from hub_profiles.template import Template, TemplateError, to_text
from hub_profiles.values import MISSING, FieldSpec, Scale, Source, Transform, ValueSpec, same
from hub_profiles.yamlsrc import Node, ProfileError, join

STATUS_TARGETS = REPORTED_PATHS  # what a profile may map a device's values to
VALUE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
PATH = re.compile(r"^(?:\$|[^.\s]+(?:\.[^.\s]+)*)$")
TABLES = ("register", "input_register", "coil", "discrete_input")
ROOT = "profile"  # how errors name the top level of the file


def _kind_word(kind: str) -> str:
    return {"bool": "true/false", "text": "text", "number": "a number"}.get(kind, kind)


class Reader:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ProfileError] = []

    # -- reporting ------------------------------------------------------------------------------
    def error(self, node: Node, message: str, *, field: str | None = None, line: int | None = None) -> None:
        self.problems.append(ProfileError(self.file, line or node.line, field if field is not None
                                          else (node.path or ROOT), message))

    def key_error(self, parent: Node, key: Any, message: str) -> None:
        self.error(parent, message, field=parent.path or ROOT, line=parent.key_lines.get(key, parent.line))

    # -- shapes ---------------------------------------------------------------------------------
    def keys(self, node: Node, allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Node] | None:
        """The mapping's entries; unknown keys and missing required ones are reported."""
        if not node.is_mapping:
            self.error(node, f"expected a mapping, got {describe(node)}")
            return None
        allowed = list(allowed)
        out: dict[str, Node] = {}
        for key, child in node.items():
            if key in allowed:
                out[key] = child
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            self.key_error(node, key, f"unknown key {key}" + (f" (did you mean {hint[0]}?)" if hint
                                                            else f" (known: {', '.join(allowed)})"))
        for key in required:
            if key not in node.value:
                self.error(node, "is required", field=join(node.path, key))
        return out

    def text(self, node: Node, *, empty_ok: bool = False) -> str | None:
        if not isinstance(node.value, str):
            self.error(node, f"expected text, got {describe(node)}")
            return None
        if not empty_ok and not node.value.strip():
            self.error(node, "must not be empty")
            return None
        return node.value

    def number(self, node: Node, *, lo: float | None = None, hi: float | None = None,
               integer: bool = False) -> float | None:
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            self.error(node, f"expected {'an integer' if integer else 'a number'}, got {describe(node)}")
            return None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.error(node, f"must be between {lo:g} and {hi:g}" if lo is not None and hi is not None
                       else f"must be at least {lo:g}" if lo is not None else f"must be at most {hi:g}")
            return None
        return v

    def boolean(self, node: Node) -> bool | None:
        if not isinstance(node.value, bool):
            self.error(node, f"expected true or false, got {describe(node)}")
            return None
        return node.value

    def items(self, node: Node) -> list[Node]:
        if not node.is_list:
            self.error(node, f"expected a list, got {describe(node)}")
            return []
        return node.value

    def path(self, node: Node) -> str | None:
        p = self.text(node)
        if p is not None and not PATH.match(p):
            self.error(node, f"bad path {p!r}: expected $ (the whole message) or dotted keys such as state.volume")
            return None
        return p

    # -- templates ------------------------------------------------------------------------------
    def template(self, node: Node, known: Mapping[str, Known] | None = None) -> Template | None:
        """A template whose placeholders must all be `known` (unless known is None)."""
        if isinstance(node.value, bool) or not isinstance(node.value, (str, int, float)):
            self.error(node, f"expected a text template, got {describe(node)}")
            return None
        try:
            t = Template.parse(node.value if isinstance(node.value, str) else to_text(node.value))
        except TemplateError as exc:
            self.error(node, str(exc))
            return None
        if known is not None and not self.names_known(node, t.names, known):
            return None
        return t

    def names_known(self, node: Node, names: Iterable[str], known: Mapping[str, Known]) -> bool:
        ok = True
        for name in names:
            if name in known:
                continue
            ok = False
            hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
            self.error(node, f"unknown placeholder {{{name}}}" + (f" (did you mean {{{hint[0]}}}?)" if hint else ""))
        return ok

    # -- transforms -----------------------------------------------------------------------------
    def scale(self, node: Node, source: Known | None = None, source_name: str = "") -> Scale | None:
        spec = self.keys(node, ("from", "to"), ("from", "to"))
        if spec is None or "from" not in spec or "to" not in spec:
            return None
        ends = [self._pair(spec["from"]), self._pair(spec["to"])]
        if ends[0] is None or ends[1] is None:
            return None
        src, dst = ends
        if src[0] == src[1]:
            self.error(spec["from"], "the two ends must differ")
            return None
        if source is not None and source.kind in ("bool", "text"):
            self.error(node, f"scale needs a number, but {{{source_name}}} is {_kind_word(source.kind)}")
            return None
        if source is not None and source.lo is not None and source.hi is not None:
            lo, hi = sorted(src)
            if source.lo < lo or source.hi > hi:
                self.error(spec["from"], f"{_fmt(src[0])}–{_fmt(src[1])} does not cover {{{source_name}}}, "
                                         f"which ranges {_fmt(source.lo)}–{_fmt(source.hi)}")
                return None
        return Scale((src[0], src[1]), (dst[0], dst[1]))

    def _pair(self, node: Node) -> list[float] | None:
        v = node.value
        if (not isinstance(v, list) or len(v) != 2
                or any(isinstance(x.value, bool) or not isinstance(x.value, (int, float)) for x in v)):
            self.error(node, f"expected two numbers such as [0, 100], got {describe(node)}")
            return None
        return [x.value for x in v]

    def mapping_table(self, node: Node, source: Known | None = None,
                      source_name: str = "") -> tuple[tuple[Any, Any], ...] | None:
        if not node.is_mapping or not node.value:
            self.error(node, f"expected a mapping of values such as {{true: \"ON\", false: \"OFF\"}}, "
                             f"got {describe(node)}")
            return None
        pairs = []
        for key, out in node.items():
            if not out.is_scalar:
                self.key_error(node, key, f"map values must be plain values, not {describe(out)}")
                return None
            pairs.append((key, out.value))
        if source is not None and source.choices:
            lacking = [c for c in source.choices if not any(same(c, k) for k, _ in pairs)]
            if lacking:
                self.error(node, f"no entry for {', '.join(to_text(c) for c in lacking)} "
                                 f"(which {{{source_name}}} can be)")
                return None
        return tuple(pairs)

    def transform(self, spec: Mapping[str, Node], source: Known | None, source_name: str) -> Transform | None:
        mapping = scale = None
        if "map" in spec:
            mapping = self.mapping_table(spec["map"], source, source_name)
            if mapping is None:
                return None
            source = None  # what reaches scale is the map's output, not the placeholder
        if "scale" in spec:
            scale = self.scale(spec["scale"], source, source_name)
            if scale is None:
                return None
        return Transform(mapping, scale)

    def value_spec(self, node: Node, spec: Mapping[str, Node], known: Mapping[str, Known]) -> ValueSpec | None:
        """`value` (a template or a literal) with optional map, scale and default."""
        if "value" not in spec:
            return None
        raw = spec["value"]
        value: Any = None
        source: Known | None = None
        name = ""
        ok = True
        if isinstance(raw.value, str):
            value = self.template(raw, known)
            ok = value is not None
            if value is not None and value.whole is not None:
                name = value.whole
                source = known.get(name)
        elif raw.is_scalar:
            value = raw.value
        else:
            self.error(raw, f"expected a template or a plain value, got {describe(raw)}")
            ok = False
        # Checked even when the value is wrong, so a bad scale beside it is reported in the same pass.
        transform = self.transform(spec, source, name)
        if transform is None or not ok:
            return None
        default = spec["default"].plain() if "default" in spec else MISSING
        return ValueSpec(value, transform, default)

    def values_block(self, node: Node, known: Mapping[str, Known]) -> dict[str, ValueSpec]:
        """`values: {name: {value, map, scale, default}}` — derived values a command's templates
        name as {name}. They build on the command's own placeholders, not on one another."""
        out: dict[str, ValueSpec] = {}
        if not node.is_mapping:
            self.error(node, f"expected a mapping of named values, got {describe(node)}")
            return out
        for name, spec_node in node.items():
            if not isinstance(name, str) or not VALUE_NAME.match(name):
                self.key_error(node, name, f"bad value name {name}: use lower-case letters, digits and _")
                continue
            if name in known:
                self.key_error(node, name, f"{name} is already a placeholder; choose another name")
                continue
            if isinstance(spec_node.value, str):
                t = self.template(spec_node, known)
                if t is not None:
                    out[name] = ValueSpec(t)
                continue
            spec = self.keys(spec_node, ("value", "map", "scale", "default"), ("value",))
            if spec is None:
                continue
            vs = self.value_spec(spec_node, spec, known)
            if vs is not None:
                out[name] = vs
        return out

    # -- fields read back from devices ----------------------------------------------------------
    def fields(self, node: Node, sources: tuple[str, ...],
               targets: tuple[str, ...] = STATUS_TARGETS) -> dict[str, FieldSpec]:
        """`target: {path|register|…: …, map, scale, bits, default}`; a bare text is a path."""
        out: dict[str, FieldSpec] = {}
        if not node.is_mapping:
            self.error(node, f"expected a mapping of fields, got {describe(node)}")
            return out
        for target, spec_node in node.items():
            if target not in targets:
                hint = difflib.get_close_matches(str(target), targets, n=1)
                self.key_error(node, target, f"unknown field {target}" + (f" (did you mean {hint[0]}?)" if hint
                                                                          else f" (fields: {', '.join(targets)})"))
                continue
            fs = self.field_spec(target, spec_node, sources)
            if fs is not None:
                out[target] = fs
        return out

    def field_spec(self, target: str, node: Node, sources: tuple[str, ...]) -> FieldSpec | None:
        if isinstance(node.value, str) and "path" in sources:
            path = self.path(node)
            return FieldSpec(target, Source(path=path)) if path else None
        allowed = (*sources, "value", "map", "scale", "bits", "default")
        spec = self.keys(node, allowed)
        if spec is None:
            return None
        given = [k for k in (*sources, "value") if k in spec]
        if len(given) != 1:
            self.error(node, f"give exactly one of {', '.join((*sources, 'value'))}"
                             + (f" (got {', '.join(given)})" if given else ""))
            return None
        key = given[0]
        if key == "path":
            path = self.path(spec["path"])
            if path is None:
                return None
            source = Source(path=path)
        elif key == "value":
            source = Source(constant=spec["value"].plain())
        else:
            address = self.number(spec[key], lo=0, hi=65535, integer=True)
            if address is None:
                return None
            source = Source(table=key, address=int(address))
        bits = None
        if "bits" in spec:
            if target != "faults":
                self.error(spec["bits"], "bits turn an integer into fault names; only faults can use them")
                return None
            bits = self.bits(spec["bits"])
            if bits is None:
                return None
        transform = self.transform(spec, None, "")
        if transform is None:
            return None
        default = spec["default"].plain() if "default" in spec else MISSING
        return FieldSpec(target, source, transform, bits, default)

    def bits(self, node: Node) -> tuple[tuple[int, str], ...] | None:
        if not node.is_mapping or not node.value:
            self.error(node, "expected bit numbers naming faults, such as {0: speaker_line, 1: amplifier}")
            return None
        out = []
        for bit, name in node.items():
            if isinstance(bit, bool) or not isinstance(bit, int) or not 0 <= bit <= 15:
                self.key_error(node, bit, f"bit {bit} is not a bit of a 16-bit register (0–15)")
                return None
            if not isinstance(name.value, str) or not name.value:
                self.error(name, "expected a fault name")
                return None
            out.append((bit, name.value))
        return tuple(out)


def declared_names(node: Node | None) -> list[str]:
    """The names a `values:` block declares, valid or not: a value whose spec is wrong must not
    also make every use of it an unknown placeholder."""
    if node is None or not node.is_mapping:
        return []
    return [k for k in node.value if isinstance(k, str) and VALUE_NAME.match(k)]


def describe(node: Node) -> str:
    v = node.value
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"the boolean {to_text(v)}"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    return f"{type(v).__name__} {v!r}" if not isinstance(v, str) else f"the text {v!r}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
