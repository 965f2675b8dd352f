"""Fixtures for the directory media store's tests: a store on a temporary directory."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub_media_directory.store import DirectoryStore

SECRET_HEX = "5e" * 32


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore.configured({"directory": str(tmp_path / "media"),
                                      "public_base_url": "http://127.0.0.1:8080/", "url_secret": SECRET_HEX})
