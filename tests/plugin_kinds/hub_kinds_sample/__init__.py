"""Test plugins of every kind (see ../README.md)."""
