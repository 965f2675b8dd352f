"""MQTT IP loudspeakers and LED boards for the hub: adapter, wire protocol and a device simulator."""

__version__ = "0.1.0"
