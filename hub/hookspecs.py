"""The plugin contract. A plugin implements any of these hooks with `@hookimpl`."""
from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("hub")
hookimpl = HookimplMarker("hub")


@hookspec
def register_vendors(register):
    """Call register(AdapterClass) for each vendor adapter (a hub.vendor.VendorAdapter subclass)."""


@hookspec
def register_sources(register):
    """Call register(SourceClass) for each content source this plugin provides."""


@hookspec
def register_outputs(register):
    """Call register(OutputClass) for each output (statistics, relays upward) this plugin provides."""


@hookspec
def register_commands(cli):
    """Add sub-commands to the `hub` command-line interface (a click group)."""


@hookspec
def register_simulators(register):
    """Call register(vendor_name, factory) for a device simulator (see hub/simulation.py)."""
