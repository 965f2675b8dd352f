"""A paho-mqtt client configured the way every MQTT-speaking adapter of the hub needs it.

Shared by the plugins (they depend on hub-core) so that authentication, TLS, the in-flight
window and the reconnect policy are set one way everywhere.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt


def make_client(settings: Mapping[str, Any], logger: logging.Logger) -> mqtt.Client:
    """An unconnected MQTT 3.1.1 client with a clean session, from adapter settings with the keys
    client_id, username, password, tls, ca_file, max_inflight and connect_timeout_s."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=settings["client_id"],
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.enable_logger(logger)
    if settings["username"] is not None:
        client.username_pw_set(settings["username"], settings["password"])
    if settings["tls"]:
        client.tls_set(ca_certs=settings["ca_file"])
    # paho's default window of 20 unacknowledged messages throttles a batch of thousands
    client.max_inflight_messages_set(settings["max_inflight"])
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect_timeout = settings["connect_timeout_s"]
    return client
