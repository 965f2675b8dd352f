"""The `hub` command line: one group per concern."""
from hub.cli.main import cli, main

__all__ = ["cli", "main"]
