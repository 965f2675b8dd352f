"""IP loudspeaker clusters behind a vendor's HTTP gateway: adapter, wire protocol and a gateway simulator."""

__version__ = "0.1.0"
