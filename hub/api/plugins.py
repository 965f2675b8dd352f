"""Plugins and the capability vocabulary they declare against."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.api.common import HubBlueprint, runtime
from hub.api.schemas import CapabilitiesSchema, PluginSchema
from hub.capabilities import CAPABILITIES, DEVICE_KINDS, PRIORITIES, VERB_CAPABILITIES, VERBS, VOCABULARY_VERSION
from hub.access.permissions import ANYONE
from hub.hookspecs import hookimpl

blp = HubBlueprint("plugins", __name__, url_prefix="/api",
                   description="Installed plugins (vendor adapters, sources, outputs, speech providers, media "
                               "stores) and the closed "
                               "capability vocabulary.")

# Who may call each view (hook register_blueprints; hub.access.permissions refuses the rest).
RULES = {"list_plugins": {"GET": ANYONE}, "capabilities": {"GET": ANYONE}}


@blp.route("/plugins")
@blp.response(200, PluginSchema(many=True))
def list_plugins() -> list[dict[str, Any]]:
    """List installed plugins

    Plugin đã cài, with versions and the manifests of what each registers (vendors: protocols, device
    kinds, capabilities, configuration schema; sources, outputs, speech providers, media stores),
    then the plugins found but skipped, with `loaded: false` and their problems.
    """
    return runtime().plugins.describe()


@blp.route("/capabilities")
@blp.response(200, CapabilitiesSchema)
def capabilities() -> dict[str, Any]:
    """Show the capability vocabulary

    Every capability a plugin may declare, the device kinds, priorities, and what each verb needs.
    """
    return {"version": VOCABULARY_VERSION, "capabilities": dict(CAPABILITIES), "device_kinds": list(DEVICE_KINDS),
            "priorities": list(PRIORITIES), "verbs": {v: sorted(VERB_CAPABILITIES[v]) for v in VERBS}}


@hookimpl
def register_blueprints(register: Callable[..., None]) -> None:
    register(blp, RULES)
