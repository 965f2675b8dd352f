"""What every plugin contract shares: a manifest, a configuration schema, health, one error family.

Each kind has its own small file beside this one: `hub/vendor.py` (devices), `hub/source.py`
(content coming in), `hub/output.py` (things going out), `hub/speech.py` (text to audio),
`hub/media.py` (where audio lives). Their manifests, base classes and errors derive from these,
so a plugin author learns the shape once.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from marshmallow import Schema, ValidationError

from hub.text import has_unpaired_surrogate

# The name is what hub.yaml, the database and `hub plugins` call the plugin: kept to what is safe
# as a YAML key, a file name and a metrics label.
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# A language as BCP 47 writes it ("vi", "en", "vi-VN", "km"); checked for form only.
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


class ContractError(ValueError):
    """Base of every contract error: the message says what is wrong and names the plugin or field."""


class ManifestError(ContractError):
    """A plugin's manifest breaks the contract (unknown capability, device kind, bad name)."""


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


def check_name(name: object, what: str = "plugin") -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ManifestError(f"{what} name {name!r}: use lower-case letters, digits and _ (a letter first, "
                            f"at most 63)")


def check_language(tag: object, where: str, error: type[ContractError] = ContractError) -> None:
    if not isinstance(tag, str) or not LANGUAGE.fullmatch(tag):
        raise error(f"{where}: {tag!r} is not a language tag such as 'vi' or 'vi-VN'")


def check_text(value: object, where: str, error: type[ContractError] = ContractError,
               required: bool = False) -> None:
    """A text field: a str without unpaired surrogates; `required` refuses blank."""
    if not isinstance(value, str):
        raise error(f"{where}: expected text, got {type(value).__name__}")
    if has_unpaired_surrogate(value):
        raise error(f"{where}: contains an unpaired surrogate (not valid Unicode)")
    if required and not value.strip():
        raise error(f"{where}: must not be empty")


def check_json(value: object, where: str, error: type[ContractError] = ContractError) -> None:
    """What the hub will store as JSON: refuse NaN, objects json cannot write, lone surrogates."""
    if has_unpaired_surrogate(value):
        raise error(f"{where}: contains an unpaired surrogate (not valid Unicode)")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise error(f"{where}: not storable JSON: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class BaseManifest:
    """Fields every kind's manifest has. Kinds subclass it (keyword-only) and add their own."""

    kind: ClassVar[str] = "plugin"
    name: str
    title: str
    version: str
    config_schema: type[Schema] | None = None  # a marshmallow Schema of the plugin's settings

    def __post_init__(self) -> None:
        check_name(self.name, self.kind)
        for field_name in ("title", "version"):
            check_text(getattr(self, field_name), f"{self.kind} {self.name}: {field_name}", ManifestError,
                       required=True)
        if self.config_schema is not None and not (isinstance(self.config_schema, type)
                                                   and issubclass(self.config_schema, Schema)):
            raise ManifestError(f"{self.kind} {self.name}: config_schema must be a marshmallow Schema class")

    def to_dict(self) -> dict[str, Any]:
        from hub.schemas.export import schema_to_jsonschema

        return {"name": self.name, "title": self.title, "version": self.version,
                "config_schema": schema_to_jsonschema(self.config_schema) if self.config_schema else {}}


class Plugin:
    """Base of the source, output, speech and media classes. Subclasses set `manifest`.

    `required` names the methods a subclass must define; the hub refuses (and reports) a class
    registered without them, so a half-written plugin is caught at start-up, not at first use."""

    manifest: ClassVar[BaseManifest]
    manifest_type: ClassVar[type[BaseManifest]] = BaseManifest
    error: ClassVar[type[ContractError]] = ContractError
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    @classmethod
    def configured(cls, raw: dict[str, Any] | None) -> Self:
        """An instance with `raw` settings validated by the manifest's schema; a wrong setting
        raises the kind's error naming the plugin and the key."""
        schema = cls.manifest.config_schema
        config = dict(raw or {})
        if schema is not None:
            try:
                config = schema().load(config)
            except ValidationError as exc:
                first = next(iter(_flatten(exc.messages)), "invalid")
                raise cls.error(f"{cls.manifest.kind} {cls.manifest.name}: configuration: {first}") from None
        return cls(config)

    @classmethod
    def contract_problems(cls) -> list[str]:
        """What keeps this class from being used (empty when it keeps the contract)."""
        if not isinstance(getattr(cls, "manifest", None), cls.manifest_type):
            return [f"has no manifest (a {cls.manifest_type.__module__}.{cls.manifest_type.__name__} "
                    f"in the class attribute `manifest`)"]
        return [f"does not implement {name}()" for name in cls.required
                if not callable(getattr(cls, name, None)) or getattr(getattr(cls, name), "__contract_stub__", False)]

    def health(self) -> Health:
        """Whether the plugin can do its work right now, for the hub's health checks."""
        return Health(True)


def stub(fn: Any) -> Any:
    """Marks a base-class method a plugin must override (see Plugin.required)."""
    fn.__contract_stub__ = True
    return fn


def _flatten(messages: Any, path: str = "") -> Sequence[str]:
    """marshmallow's nested error messages as "key.sub: message" lines."""
    if isinstance(messages, dict):
        return [m for key, value in messages.items() for m in _flatten(value, f"{path}{key}.")]
    if isinstance(messages, list):
        return [m for value in messages for m in _flatten(value, path)]
    return [f"{path.rstrip('.')}: {messages}" if path else str(messages)]
