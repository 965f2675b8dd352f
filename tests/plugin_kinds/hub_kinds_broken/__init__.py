"""Test plugins that break the contract (see ../README.md)."""
