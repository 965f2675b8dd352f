"""An output that appends the events it is given to a file, and a count every minute."""
from __future__ import annotations

import json
from datetime import datetime

from marshmallow import RAISE, Schema, fields

from hub.hookspecs import hookimpl
from hub.output import Output, OutputManifest, event_type


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    path = fields.Str(required=True)


class EventLog(Output):
    manifest = OutputManifest(name="sample_event_log", title="Device presence to a file", version="0.1.0",
                              config_schema=ConfigSchema, events=frozenset({"device.offline", "device.online"}),
                              interval_s=60)

    def __init__(self, config=None):
        super().__init__(config)
        self.seen = 0

    def handle(self, event) -> None:
        self.seen += 1
        with open(self.config["path"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"type": event_type(event)}) + "\n")

    def run_periodic(self, now: datetime) -> None:
        with open(self.config["path"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"at": now.isoformat(), "seen": self.seen}) + "\n")


@hookimpl
def register_outputs(register):
    register(EventLog)
