"""The hub's figures for Prometheus: computed from the hub's database and Redis at each scrape."""

__version__ = "0.1.0"
