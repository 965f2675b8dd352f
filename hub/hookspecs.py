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
def register_commands(cli):
    """Add sub-commands to the `hub` command-line interface (a click group)."""


@hookspec
def register_simulators(register):
    """Call register(vendor_name, factory) for a device simulator (see hub/simulation.py)."""
