"""The plugin contract. A plugin implements any of these hooks with `@hookimpl`."""
from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("hub")
hookimpl = HookimplMarker("hub")


@hookspec
def register_vendors(register):
    """Call register(AdapterClass) for each vendor adapter (a hub.vendor.VendorAdapter subclass)."""


@hookspec
def register_sources(register):
    """Call register(SourceClass) for each content source (a hub.source.Source subclass) this plugin provides."""


@hookspec
def register_outputs(register):
    """Call register(OutputClass) for each output (a hub.output.Output subclass: metrics, event streams,
    reports pushed upward) this plugin provides."""


@hookspec
def register_speech_providers(register):
    """Call register(ProviderClass) for each text-to-speech engine (a hub.speech.SpeechProvider subclass)."""


@hookspec
def register_media_stores(register):
    """Call register(StoreClass) for each media store (a hub.media.MediaStore subclass)."""


@hookspec
def register_blueprints(register):
    """Call register(blueprint, rules) for each API blueprint (a flask-smorest Blueprint, best a
    hub.api.common.HubBlueprint) this plugin serves; the hub's own resources register the same way.

    `rules` says who may call each view of that blueprint, by view name and HTTP method:
    {"Things": {"GET": ANYONE, "POST": ADMINISTRATORS}} with the role sets of
    hub.access.permissions (or PUBLIC for a door that needs no sign-in). HEAD and OPTIONS follow
    GET. A view or method without a rule is refused (403); a blueprint registered without rules,
    or under a name already taken, is not served at all and the refusal is reported.
    """


@hookspec
def register_cli_groups(register):
    """Call register(command) for each click group (or command) to add under `hub`, with its name.

    A name already taken (by the hub or an earlier plugin) is refused and reported, never replaced.
    """


@hookspec
def register_commands(cli):
    """Add sub-commands to the `hub` command-line interface (a click group).

    The older form of register_cli_groups, kept for plugins written against it: it may replace a
    command of the same name silently, so new plugins should use register_cli_groups.
    """


@hookspec
def register_event_types(register):
    """Call register(EventClass) for each event type this plugin publishes: a hub.events.Event
    subclass with its own `type` name ("myplugin.thing_happened"). The hub's own types register the
    same way. Outputs and the console subscribe to them by name; a name already taken is refused."""


@hookspec
def register_simulators(register):
    """Call register(vendor_name, factory) for a device simulator (see hub/simulation.py)."""
