"""The hub's event stream for an operations centre (IOC): device and delivery events as signed
webhooks and on an MQTT topic, in order, retried, with dead letters an operator can replay."""

__version__ = "0.1.0"
