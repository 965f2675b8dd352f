"""What the open-data output and the national push share: the settings that choose which periods
are reported and for which area, and reading one period's table from the hub's context."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates
from marshmallow.validate import OneOf

from hub.output import OutputContext, OutputError

from hub_output_opendata.periods import KINDS, PROVINCE_TZ, Period, completed, zone
from hub_output_opendata.rows import rows

MAX_SETTLE_S = 7 * 86400


class PeriodicSchema(Schema):
    """Settings every statistics output has. Unknown keys are refused by name."""

    class Meta:
        unknown = RAISE

    periods = fields.List(fields.Str(validate=OneOf(KINDS, error=f"one of {', '.join(KINDS)}")),
                          load_default=lambda: ["day", "week", "month"], validate=validate.Length(min=1))
    timezone = fields.Str(load_default=PROVINCE_TZ)
    area_code = fields.Str(load_default=None, allow_none=True,
                           validate=validate.Regexp(r"^[0-9A-Za-z._-]{1,32}$", error="an area code (e.g. 80)"))
    # late reports (a device's ack after a reconnect) still count: a period is reported this long after it ends
    settle_s = fields.Float(load_default=3600.0, validate=validate.Range(min=0, max=MAX_SETTLE_S))
    catch_up = fields.Int(load_default=3, validate=validate.Range(min=1, max=400))  # missed periods made good

    @validates("periods")
    def _periods(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("a period kind is named twice")

    @validates("timezone")
    def _timezone(self, value: str, **_: Any) -> None:
        try:
            zone(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def setting(schema: type[Schema], config: dict[str, Any], key: str) -> Any:
    """A setting, or its schema's default when the output was built without configured()."""
    if key in config:
        return config[key]
    default = schema().fields[key].load_default
    return default() if callable(default) else default


def due(config: dict[str, Any], schema: type[Schema], now: datetime) -> list[Period]:
    """The periods to report at `now` — for each configured kind the `catch_up` most recent that
    have ended and settled — oldest first."""
    tz = zone(setting(schema, config, "timezone"))
    out: list[Period] = []
    for kind in setting(schema, config, "periods"):
        out += completed(kind, now, tz, setting(schema, config, "catch_up"), setting(schema, config, "settle_s"))
    return sorted(out, key=lambda p: (p.end, p.kind))


def period_table(context: OutputContext | None, period: Period, area_code: str | None) -> list[dict[str, Any]]:
    """The published rows of `period`, read from the hub now. A row the schema would refuse
    raises OutputError (not transient: the same figures would fail again)."""
    if context is None:
        raise OutputError("the output is not open", transient=True)
    stats = context.statistics(period.start, period.end, area_code)  # type: ignore[attr-defined]
    try:
        return rows(stats, period)
    except ValueError as exc:
        raise OutputError(f"{period.id}: the hub's statistics do not fit the published schema: {exc}") from None
