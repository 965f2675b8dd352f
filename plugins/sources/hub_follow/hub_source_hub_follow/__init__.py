"""Hub content source: one hub follows the published contents of another (hub.api.feed)."""

__version__ = "0.1.0"
