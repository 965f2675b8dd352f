"""Reading a plugin's configuration schema for what the security checks need: which settings
carry credentials, whether the channel is encrypted, whether certificates are verified.

The hub's contract has no field for these, so the suite reads the marshmallow schema: a
credential is a `load_only` field (never dumped back, as a secret should be) or one whose name
says so; TLS is a boolean switch or a URL scheme. The guide tells vendors to follow these
conventions; a schema the suite cannot read makes the check an error, never a pass.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from marshmallow import missing

SECRET_NAME = re.compile(r"(pass(word|wd|phrase)?$|secret|token|api_?key|apikey|psk|credential|private_key"
                         r"|client_key|key_file)", re.I)
TLS_SWITCH = re.compile(r"^(use_)?(tls|ssl|secure)$|^(tls|ssl)_enabled$|^encrypt(ion)?$", re.I)
VERIFY_SWITCH = re.compile(r"^(verify|verify_tls|verify_ssl|tls_verify|ssl_verify|verify_cert(ificate)?s?)$", re.I)
INSECURE_SWITCH = re.compile(r"insecure|no_verify|skip_verify|tls_insecure", re.I)
SECURE_SCHEMES = {"https", "mqtts", "wss", "ssl", "tls", "rtsps", "amqps"}
PLAIN_SCHEMES = {"http", "mqtt", "ws", "tcp", "rtsp", "amqp"}


def _fields(schema_cls: Any) -> dict[str, Any]:
    return dict(schema_cls().fields) if schema_cls is not None else {}


def secret_fields(schema_cls: Any) -> list[str]:
    return sorted(n for n, f in _fields(schema_cls).items() if getattr(f, "load_only", False) or SECRET_NAME.search(n))


def _default(f: Any) -> Any:
    value = getattr(f, "load_default", missing)
    if callable(value):
        # A callable default that returns something new each time (a random client id) is not a
        # shared credential; one that returns a constant is.
        first, second = value(), value()
        return first if first == second else missing
    return value


def default_credentials(schema_cls: Any) -> dict[str, Any]:
    """Credential settings that ship with a value."""
    out = {}
    for name in secret_fields(schema_cls):
        f = _fields(schema_cls)[name]
        for value in (_default(f), getattr(f, "dump_default", missing)):
            if value is not missing and value not in (None, "", b""):
                out[name] = value
    return out


def credentials_in(config: Mapping[str, Any], schema_cls: Any) -> dict[str, Any]:
    return {n: config[n] for n in secret_fields(schema_cls) if config.get(n) not in (None, "")}


def wrong_credentials(config: Mapping[str, Any], schema_cls: Any, token: str) -> dict[str, Any]:
    """The configuration with every credential replaced by a wrong one of the same kind."""
    out = dict(config)
    for name, value in credentials_in(config, schema_cls).items():
        out[name] = f"wrong-{token}" if isinstance(value, str) else value
    return out


def redact(config: Mapping[str, Any], schema_cls: Any) -> dict[str, Any]:
    secrets = set(secret_fields(schema_cls))
    return {k: ("***" if k in secrets and v not in (None, "") else v) for k, v in config.items()}


def channel_encryption(config: Mapping[str, Any], schema_cls: Any) -> tuple[bool | None, str]:
    """Whether the effective configuration encrypts the control channel, and why the suite thinks so."""
    fields = _fields(schema_cls)
    verdicts: list[tuple[bool, str]] = []
    for name, value in config.items():
        if TLS_SWITCH.match(name) and isinstance(value, bool):
            verdicts.append((value, f"{name}={str(value).lower()}"))
        elif isinstance(value, str) and "://" in value:
            scheme = urlparse(value).scheme.lower()
            if scheme in SECURE_SCHEMES:
                verdicts.append((True, f"{name} uses {scheme}://"))
            elif scheme in PLAIN_SCHEMES:
                verdicts.append((False, f"{name} uses {scheme}://"))
    if not verdicts:
        switches = [n for n in fields if TLS_SWITCH.match(n)]
        return None, ("no TLS switch or URL in the configuration" if not switches
                      else f"TLS switch {switches[0]} not set")
    plain = [why for ok, why in verdicts if not ok]
    if plain:
        return False, "; ".join(plain)
    return True, "; ".join(why for _, why in verdicts)


def verification_problems(config: Mapping[str, Any], schema_cls: Any) -> list[str]:
    """Settings that disable certificate verification by default or in this configuration."""
    problems = []
    for name, f in _fields(schema_cls).items():
        default = _default(f)
        if VERIFY_SWITCH.match(name):
            if default is False:
                problems.append(f"{name} defaults to false")
            if config.get(name) is False:
                problems.append(f"{name} is false in the certified configuration")
        elif INSECURE_SWITCH.search(name):
            if default is True:
                problems.append(f"{name} defaults to true")
            if config.get(name) is True:
                problems.append(f"{name} is true in the certified configuration")
    return problems
