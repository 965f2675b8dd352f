"""Snapcast (snapserver + snapclients) as a hub speaker vendor, through snapserver's JSON-RPC API."""

__version__ = "0.1.0"
