"""RSS 2.0 and Atom feeds for the hub: fetched with a timeout and conditional GET, parsed by feedparser."""

__version__ = "0.1.0"
