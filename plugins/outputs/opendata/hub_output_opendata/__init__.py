"""Open data: the hub's non-personal statistics per area and period, as CSV and JSON files with a
published Frictionless Table Schema (see README.md)."""

__version__ = "0.1.0"
