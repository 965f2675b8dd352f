"""A connector for the national source-information system whose endpoints, authentication and
field mapping are configuration (its exchange format is not public), and a simulator to test it."""

__version__ = "0.1.0"
