"""`hub plugin new NAME`: a vendor plugin distribution that installs, loads and runs through
the suite from the first minute — failing honestly, requirement by requirement, until written."""
from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import yaml

from hub_conformance import quality

NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")  # hub/schemas/manifest.py's rule for manifest names

# template → where it goes; __PKG__ and __NAME__ in paths are replaced too.
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "target.example.yaml.tmpl": "target.example.yaml",
    "__init__.py.tmpl": "__PKG__/__init__.py",
    "adapter.py.tmpl": "__PKG__/adapter.py",
    "simulator.py.tmpl": "__PKG__/simulator.py",
    "plugin.py.tmpl": "__PKG__/plugin.py",
    "test_plugin.py.tmpl": "tests/test___NAME___plugin.py",
    "test_conformance.py.tmpl": "tests/test___NAME___conformance.py",
}

# What a new plugin declares until the vendor says otherwise: the least a device of the kind does.
STARTER_CAPABILITIES = {
    "speaker": ("audio.play_url", "audio.stop", "audio.volume", "status.heartbeat", "security.auth"),
    "led_board": ("led.text", "led.text_unicode", "status.heartbeat", "security.auth"),
}


class ScaffoldError(ValueError):
    """The plugin cannot be created as asked; the message says why."""


def quality_scale_text(name: str) -> str:
    """A quality_scale.yaml with every rule of tiers.yaml to do, grouped by tier."""
    spec = quality.tiers()
    lines = [f"# Quality claims of the {name} plugin, checked by `hub certify` against the tiers in",
             "# hub_conformance/tiers.yaml. Each rule: done, todo, or exempt with a comment saying why:",
             "#   some-rule:", "#     status: exempt", "#     comment: \"our bus has no authentication to bypass\"",
             "rules:"]
    for tier, t in spec["tiers"].items():
        lines.append(f"  # {tier}: {t.get('summary', '')}")
        for rule in t.get("rules", []):
            lines.append(f"  {rule}: todo  # {spec['rules'][rule]['description']}")
    return "\n".join(lines) + "\n"


def create(name: str, directory: Path, *, kinds: Iterable[str] = ("speaker", "led_board"), title: str | None = None,
           force: bool = False) -> Path:
    """Write the plugin project into directory/hub-vendor-NAME and return that folder."""
    if not NAME.match(name):
        raise ScaffoldError(f"{name!r}: a plugin name is lower case letters, digits and _, starting with a letter "
                            "(it becomes the manifest name and the entry-point name)")
    kinds = tuple(dict.fromkeys(kinds))
    unknown = [k for k in kinds if k not in STARTER_CAPABILITIES]
    if not kinds or unknown:
        raise ScaffoldError(f"device kinds must be speaker and/or led_board, not {', '.join(unknown) or 'none'}")
    dist = "hub-vendor-" + name.replace("_", "-")
    pkg = f"hub_{name}"
    root = Path(directory) / dist
    if root.exists() and any(root.iterdir()) and not force:
        raise ScaffoldError(f"{root} exists and is not empty (use --force to write into it)")
    caps = sorted({c for k in kinds for c in STARTER_CAPABILITIES[k]})
    prefix = {"speaker": "SPK", "led_board": "LED"}
    devices = ", ".join(f'{{"address": f"{prefix[k]}-{{run_id}}", "kind": "{k}"}}' for k in kinds)
    values = {
        "__DIST__": dist, "__PKG__": pkg, "__NAME__": name,
        "__TITLE__": title or f"{name.replace('_', ' ')} loudspeakers and boards",
        "__KINDS__": repr(kinds).replace("'", '"'),
        "__CAPABILITIES__": ",\n            ".join(f'"{c}"' for c in caps),
        "__DEVICES__": devices, "__PORT__": "8883", "__ENVNAME__": name.upper(),
    }
    templates = resources.files("hub_conformance").joinpath("templates")
    for template, dest in FILES.items():
        text = templates.joinpath(template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
            dest = dest.replace(key, value)
        path = root / dest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / pkg / "quality_scale.yaml").write_text(quality_scale_text(name), encoding="utf-8")
    yaml.safe_load((root / pkg / "quality_scale.yaml").read_text(encoding="utf-8"))  # it must parse
    return root
