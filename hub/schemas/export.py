"""Marshmallow → JSON Schema (2020-12), so vendors in any language share our definitions."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from hub.capabilities import CAPABILITIES, VOCABULARY_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://schemas.hub.invalid/"  # identifiers only; nothing is fetched from here


def _spec() -> tuple[APISpec, MarshmallowPlugin]:
    plugin = MarshmallowPlugin()
    spec = APISpec("hub", "1", "3.1.0", plugins=[plugin])
    return spec, plugin


def schema_to_jsonschema(schema: type[Schema] | Schema) -> dict[str, Any]:
    """One schema, nested schemas inlined, as a JSON Schema object."""
    spec, plugin = _spec()
    converter = plugin.converter
    assert converter is not None
    inst = schema() if isinstance(schema, type) else schema
    out = converter.schema2jsonschema(inst)
    return _inline(out, spec)


def _inline(node: Any, spec: APISpec) -> Any:
    components = spec.to_dict().get("components", {}).get("schemas", {})

    def walk(n: Any) -> Any:
        if isinstance(n, dict):
            ref = n.get("$ref")
            if ref and ref.startswith("#/components/schemas/"):
                # what sits beside the reference (a nested field's description) belongs to the field
                return {**walk(components[ref.rsplit("/", 1)[1]]), **walk({k: v for k, v in n.items() if k != "$ref"})}
            return {k: walk(v) for k, v in n.items()}
        if isinstance(n, list):
            return [walk(v) for v in n]
        return n

    return walk(node)


def _with_verb_params(command: dict[str, Any]) -> dict[str, Any]:
    from hub.schemas.command import VERB_PARAMS

    rules = []
    for verb, params in VERB_PARAMS.items():
        rules.append({
            "if": {"properties": {"verb": {"const": verb}}, "required": ["verb"]},
            "then": {"properties": {"params": schema_to_jsonschema(params)}},
        })
    command["allOf"] = rules
    return command


def build_all() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document, for every exported schema plus the vocabulary."""
    from hub.schemas import EXPORTED

    docs: dict[str, dict[str, Any]] = {}
    for name, schema in EXPORTED.items():
        body = schema_to_jsonschema(schema)
        if name == "command":
            body = _with_verb_params(body)
        docs[f"{name}.schema.json"] = {"$schema": DIALECT, "$id": f"{ID_BASE}{name}.schema.json",
                                       "title": schema.__name__.removesuffix("Schema"), **body}
    docs["capabilities.json"] = {"version": VOCABULARY_VERSION, "capabilities": CAPABILITIES}
    return docs


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, doc in build_all().items():
        path = directory / fname
        path.write_text(render(doc), encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Names of files in `directory` that differ from what the code would export now."""
    out = []
    for fname, doc in build_all().items():
        path = directory / fname
        if not path.exists() or path.read_text(encoding="utf-8") != render(doc):
            out.append(fname)
    return out
