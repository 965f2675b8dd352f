"""LED bulletin boards on an RS-485 bus for the hub: adapter, framed wire protocol and a bus simulator."""

__version__ = "0.1.0"
