"""Declarative device profiles: a YAML file maps the hub's commands onto a generic MQTT or
Modbus TCP driver, so simple hardware needs configuration rather than a Python plugin."""

__version__ = "0.1.0"
