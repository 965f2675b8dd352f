"""What a device reports about itself, normalised across vendors."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from hub.schemas.fields import TextSchema

ACTIVITIES = ("idle", "playing", "relaying", "showing", "off", "unknown")
NETWORKS = ("2g", "3g", "4g", "5g", "ethernet", "wifi", "unknown")
# A device's clock outside these is broken, not a report to store: 9999-12-31T23:59:59-01:00 does
# not even exist in UTC (OverflowError on the way into the database), and a far-future time
# would make every later report of the device look older than it (hub.fleet.status_writer).
EARLIEST_REPORT = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_REPORT = datetime(2100, 1, 1, tzinfo=timezone.utc)


def report_time_problem(at: datetime) -> str | None:
    """Why an aware `at` cannot be a device's report time, or None when it can."""
    try:
        utc = at.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return f"{at.isoformat()} is outside the range of representable times"
    if not EARLIEST_REPORT <= utc < LATEST_REPORT:
        return (f"{at.isoformat()} is outside {EARLIEST_REPORT.year}–{LATEST_REPORT.year - 1}: "
                "the device's clock is wrong")
    return None


class SignalSchema(Schema):
    network = fields.Str(validate=validate.OneOf(NETWORKS))
    rssi_dbm = fields.Int(validate=validate.Range(min=-150, max=0))
    quality = fields.Int(validate=validate.Range(min=0, max=100), metadata={"description": "0–100"})


class DeviceStatusSchema(TextSchema):
    online = fields.Bool(required=True)
    activity = fields.Str(load_default="unknown", validate=validate.OneOf(ACTIVITIES))
    source = fields.Str(allow_none=True, validate=validate.Length(max=2000),
                        metadata={"description": "Content id or stream URL being played or shown"})
    volume = fields.Int(allow_none=True, validate=validate.Range(min=0, max=100),
                        metadata={"description": "Normalised 0–100 whatever the vendor's scale"})
    brightness = fields.Int(allow_none=True, validate=validate.Range(min=0, max=100))
    power = fields.Bool(allow_none=True)
    signal = fields.Nested(SignalSchema, allow_none=True)
    faults = fields.List(fields.Str(validate=validate.Length(max=100)), load_default=list)
    firmware = fields.Str(allow_none=True, validate=validate.Length(max=100))
    reported_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _storable(self, data: dict[str, Any], **_: Any) -> None:
        """Every plugin's parse_status ends here: refuse what no database can store, so that one
        device cannot fail the ingest's writes (see hub.delivery.ingest for what still slips through)."""
        # Lone surrogates never get here: TextSchema refuses them before loading, naming the path.
        errors: dict[str, list[str]] = {}
        at = data.get("reported_at")
        problem = report_time_problem(at) if isinstance(at, datetime) else None
        if problem:
            errors["reported_at"] = [problem]
        if errors:
            raise ValidationError(errors)


# The device-status field list, written once: what a device reports is the schema above; what the
# hub keeps beside it is KEPT_FIELDS. The table (hub.store.models.DeviceStatus), the ingest's writer,
# the API's answers and the profiles plugin derive theirs from these (tests/test_single_source.py).
REPORTED_FIELDS: tuple[str, ...] = tuple(DeviceStatusSchema._declared_fields)
KEPT_FIELDS = ("last_seen_at", "operating_state", "state_reason", "state_since")
STATUS_FIELDS = REPORTED_FIELDS + KEPT_FIELDS  # a device's status as the API answers it
# Every value a plugin may fill, nested ones by dotted path ("signal.rssi_dbm").
REPORTED_PATHS: tuple[str, ...] = tuple(
    path for name, f in DeviceStatusSchema._declared_fields.items()
    for path in ([f"{name}.{k}" for k in f.nested._declared_fields] if isinstance(f, fields.Nested) else [name]))
