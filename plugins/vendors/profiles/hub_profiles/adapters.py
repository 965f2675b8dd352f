"""One adapter class per profile, made at load time: the hub knows vendors by their manifest,
so each profile becomes a vendor of its own, named after the profile."""
from __future__ import annotations

from hub.addresses import AddressSchema, EndpointAddress, TopicSegmentAddress
from hub.vendor import Manifest, VendorAdapter

from hub_profiles.modbus_adapter import ModbusProfileAdapter, ModbusProfileConfigSchema
from hub_profiles.model import PROTOCOLS, ModbusSettings, Profile
from hub_profiles.mqtt_adapter import MqttProfileAdapter, MqttProfileConfigSchema

BASES: dict[str, tuple[type[VendorAdapter], type]] = {
    "mqtt": (MqttProfileAdapter, MqttProfileConfigSchema),
    "modbus_tcp": (ModbusProfileAdapter, ModbusProfileConfigSchema),
}


def address_for(profile: Profile) -> AddressSchema:
    """MQTT devices are a topic level; Modbus devices host[:port][/unit] the province allows."""
    if profile.driver == "modbus_tcp":
        port = profile.settings.port if isinstance(profile.settings, ModbusSettings) else ModbusSettings().port
        return EndpointAddress(default_port=port, unit=True,
                               description="host[:port][/unit] of a Modbus TCP device the province allows")
    return TopicSegmentAddress()


def manifest_for(profile: Profile) -> Manifest:
    return Manifest(name=profile.name, title=profile.title, version=profile.version,
                    protocols=PROTOCOLS[profile.driver], device_kinds=profile.device_kinds,
                    capabilities=profile.capabilities, config_schema=BASES[profile.driver][1],
                    address=address_for(profile))


def adapter_class(profile: Profile) -> type[VendorAdapter]:
    """A VendorAdapter subclass for `profile` (raises ManifestError if the hub refuses it)."""
    base = BASES[profile.driver][0]
    class_name = "".join(part.capitalize() for part in profile.name.split("_")) + "ProfileAdapter"
    # __module__ keeps `hub plugins` listing these under the profiles distribution.
    return type(class_name, (base,), {"manifest": manifest_for(profile), "profile": profile,
                                      "__module__": __name__, "__qualname__": class_name,
                                      "__doc__": f"{profile.title} (profile {profile.source})"})
