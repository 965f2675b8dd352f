"""Configuration errors name the key that is wrong (Plugin.configured), before anything is sent."""
from __future__ import annotations

from typing import Any

import pytest

from hub.output import OutputError

from hub_output_events.mqtt_output import MqttEventOutput
from hub_output_events.webhook_output import WebhookOutput

from events_helpers import SECRET

HOOK = {"name": "ioc", "url": "http://127.0.0.1:18080/hooks", "secret": SECRET}


@pytest.mark.parametrize(("raw", "named"), [
    ({}, "webhooks: Missing data"),
    ({"webhooks": []}, "webhooks: Shorter than minimum"),
    ({"webhooks": [{**HOOK, "url": "ftp://127.0.0.1/x"}]}, "webhooks.0.url: 'ftp://127.0.0.1/x': only http"),
    ({"webhooks": [{**HOOK, "url": "http://u:p@127.0.0.1:18080/"}]}, "webhooks.0.url: credentials in the URL"),
    ({"webhooks": [{**HOOK, "url": "http://127.0.0.1:6379/"}]}, "webhooks.0.url: 127.0.0.1:6379 is the hub's own Redis"),
    ({"webhooks": [{**HOOK, "secret": "short"}]}, "webhooks.0.secret: at least 16 characters"),
    ({"webhooks": [{k: v for k, v in HOOK.items() if k != "secret"}]}, "webhooks.0.secret: Missing data"),
    ({"webhooks": [{**HOOK, "name": "IOC main"}]}, "webhooks.0.name: use lower-case"),
    ({"webhooks": [HOOK, HOOK]}, "webhooks: webhook name 'ioc' is used twice"),
    ({"webhooks": [{**HOOK, "events": ["Device offline"]}]}, "webhooks.0.events: 'Device offline' is not an event"),
    ({"webhooks": [{**HOOK, "headers": {"X-Hub-Signature": "x"}}]}, "webhooks.0.headers: X-Hub-Signature is set"),
    ({"webhooks": [HOOK], "max_attempts": 0}, "max_attempts: Must be greater than or equal to 1"),
    ({"webhooks": [HOOK], "backoff_initial_s": 10, "backoff_max_s": 1}, "backoff_max_s: must not be less"),
    ({"webhooks": [HOOK], "retries": 3}, "retries: Unknown field"),
])
def test_webhook_configuration_errors_name_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(OutputError, match="^output event_webhooks: configuration: ") as caught:
        WebhookOutput.configured(raw)
    assert named in str(caught.value)


@pytest.mark.parametrize(("raw", "named"), [
    ({}, "host: Missing data"),
    ({"host": "mqtt://127.0.0.1"}, "host: a host name"),
    ({"host": "127.0.0.1:1883"}, "host: a host name"),
    ({"host": "127.0.0.1", "port": 0}, "port: Must be greater"),
    ({"host": "127.0.0.1", "topic_prefix": "hub/#"}, "topic_prefix: a topic without wildcards"),
    ({"host": "127.0.0.1", "password": "x"}, "password: a password needs a username"),
    ({"host": "127.0.0.1", "events": []}, "events: Shorter than minimum"),
    ({"host": "127.0.0.1", "port": 6379}, "port: 127.0.0.1:6379 is the hub's own Redis"),
])
def test_mqtt_configuration_errors_name_the_key(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(OutputError, match="^output event_mqtt: configuration: ") as caught:
        MqttEventOutput.configured(raw)
    assert named in str(caught.value)


def test_the_outputs_keep_the_contract_and_are_found_through_the_entry_point() -> None:
    from hub.plugins import Plugins

    plugins = Plugins()
    plugins.load_entry_points()
    assert plugins.outputs()["event_webhooks"] is WebhookOutput
    assert plugins.outputs()["event_mqtt"] is MqttEventOutput
    for cls in (WebhookOutput, MqttEventOutput):
        assert cls.contract_problems() == []
        assert cls.manifest.wants({"type": "device.offline"}) and cls.manifest.interval_s
