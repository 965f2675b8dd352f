"""A wrong setting is refused when the outputs file is read, naming the key; the hub's own
services are never a destination."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.config import Settings, set_settings
from hub.output import OutputError

from hub_output_national_push.plugin import NationalPushOutput

URL = "https://tttn.example.invalid/api/v1/reports"


@pytest.fixture(autouse=True)
def hub_settings() -> Iterator[None]:
    settings = Settings()
    settings.redis_url = "redis://127.0.0.1:6379/0"
    settings.api_listen = "127.0.0.1:8080"
    set_settings(settings)
    yield
    set_settings(None)


@pytest.mark.parametrize(("config", "named"), [
    ({"token": "t-national-80"}, "url: Missing data for required field"),
    ({"url": URL}, "token: Missing data for required field"),
    ({"url": URL, "token": "short"}, "token: at least 8 characters"),
    ({"url": "ftp://tttn.example.invalid/r", "token": "t-national-80"}, "url: 'ftp://tttn.example.invalid/r': an http"),
    ({"url": "https://u:p@tttn.example.invalid/r", "token": "t-national-80"}, "url: credentials in the URL"),
    ({"url": "http://127.0.0.1:6379/", "token": "t-national-80"}, "url: 127.0.0.1:6379 is the hub's own Redis"),
    ({"url": "http://localhost:8080/api/reports", "token": "t-national-80"}, "url: localhost:8080 is the hub's own API"),
    ({"url": URL, "token": "t-national-80", "periods": ["year"]}, "periods.0: one of day, week, month"),
    ({"url": URL, "token": "t-national-80", "reporter": "Long An"}, "reporter: letters, digits"),
    ({"url": URL, "token": "t-national-80", "timeout_s": 0}, "timeout_s: "),
    ({"url": URL, "token": "t-national-80", "secret": "x"}, "secret: Unknown field"),
])
def test_a_bad_setting_is_named(config: dict[str, Any], named: str) -> None:
    with pytest.raises(OutputError, match="^output national_push: configuration: ") as caught:
        NationalPushOutput.configured(config)
    assert named in str(caught.value)


def test_the_token_is_never_shown() -> None:
    out = NationalPushOutput.configured({"url": URL + "?key=abc", "token": "t-national-80-secret"})
    schema = NationalPushOutput.manifest.config_schema
    assert schema is not None and "token" not in schema().dump(out.config)  # load_only
    assert "t-national-80-secret" not in str(out.health().detail) and "abc" not in str(out.health().detail)
    assert out.config["periods"] == ["month"]  # by default, last month's report
