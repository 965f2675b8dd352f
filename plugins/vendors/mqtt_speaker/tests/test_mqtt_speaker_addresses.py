"""What the hub refuses as an MQTT device's address (security finding 1): it is one topic level
of `<prefix>/<address>/cmd` and the device's broker user, so a `+`, `#` or `/` would widen the
hub's subscriptions or reach other devices' topics. The adapter refuses the same in send()."""
from __future__ import annotations

import pytest

from hub.addresses import AddressError, check_address
from hub.plugins import Plugins
from hub.fleet.registry import RegistryError, check_device_address
from hub.testing import loopback_address_policy

from hub_mqtt_speaker.adapter import MqttSpeakerAdapter

REFUSED = {"spk/1": "mqtt_topic_segment", "spk+": "mqtt_topic_segment", "#": "mqtt_topic_segment",
           "spk\x00": "mqtt_topic_segment", "": "empty", "spk\r\n": "characters", " spk": "characters"}


@pytest.mark.parametrize("address, rule", sorted(REFUSED.items()))
def test_refused_address_forms(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(MqttSpeakerAdapter.manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule


def test_the_registry_refuses_naming_the_address_and_accepts_a_plain_level() -> None:
    plugins = Plugins()
    plugins.load_entry_points(only={"mqtt_speaker"})
    with pytest.raises(RegistryError) as err:
        check_device_address(plugins, "mqtt_speaker", "spk-1/#", "device S1", loopback_address_policy())
    assert err.value.field == "address" and err.value.status == 422 and "rule: mqtt_topic_segment" in str(err.value)
    check_device_address(plugins, "mqtt_speaker", "spk-0001", "device S1", loopback_address_policy())
