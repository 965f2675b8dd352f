"""Entry point of the `hub.outputs` group: registers the two event-stream outputs."""
from __future__ import annotations

from hub.hookspecs import hookimpl

from hub_output_events.mqtt_output import MqttEventOutput
from hub_output_events.webhook_output import WebhookOutput


@hookimpl
def register_outputs(register):  # type: ignore[no-untyped-def]
    register(WebhookOutput)
    register(MqttEventOutput)
