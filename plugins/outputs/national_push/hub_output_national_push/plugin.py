"""The `national_push` output: every `interval_s`, each period that has ended and settled (last
month, by default) is POSTed once to the national source-information system, as the same
non-personal rows the `opendata` output publishes (see README.md).

Each report carries a `report_id` (`<reporter>/<period id>`, e.g. `long-an/month:2025-08`), also
sent as `Idempotency-Key`, so the receiver keeps one report per period however often it arrives.
The output remembers what was received in its state folder and does not send it again; a report
the receiver refused is not sent again until the output is configured anew.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError, fields, validate, validates
from marshmallow.validate import OneOf

from hub.config import get_settings
from hub.contract import Health
from hub.hookspecs import hookimpl
from hub.output import Output, OutputContext, OutputError, OutputManifest

from hub_output_national_push import __version__
from hub_output_national_push.sender import ReportRefused, check_url, post_report, redacted
from hub_output_opendata.common import PeriodicSchema, due, period_table, setting
from hub_output_opendata.periods import KINDS, Period
from hub_output_opendata.publish import write_atomic

log = logging.getLogger(__name__)
SCHEMA_NAME = "hub-opendata-statistics/1"  # the rows are the open-data table's (its schema.json)
STATE_FILE = "received.json"
MAX_REMEMBERED = 2000  # report ids kept in the state file; older ones are past any catch_up


class ConfigSchema(PeriodicSchema):
    url = fields.Str(required=True)  # the national system's reports endpoint
    token = fields.Str(required=True, load_only=True, validate=validate.Length(
        min=8, error="at least 8 characters (write it as ${{VARIABLE}}: the file is no place for secrets)"))
    periods = fields.List(fields.Str(validate=OneOf(KINDS, error=f"one of {', '.join(KINDS)}")),
                          load_default=lambda: ["month"], validate=validate.Length(min=1))
    reporter = fields.Str(load_default=None, allow_none=True,  # who reports; default: the setting hub_name
                          validate=validate.Regexp(r"^[A-Za-z0-9._-]{1,64}$", error="letters, digits, . _ -"))
    timeout_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=300))
    state_dir = fields.Str(load_default=None, allow_none=True)  # default <hub state_dir>/outputs/national_push

    @validates("url")
    def _url(self, value: str, **_: Any) -> None:
        problem = check_url(value)
        if problem:
            raise ValidationError(problem)


class NationalPushOutput(Output):
    manifest = OutputManifest(name="national_push", title="Statistics pushed to the national system",
                              version=__version__, config_schema=ConfigSchema, interval_s=600.0)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.received: dict[str, str] = {}  # report_id → when the receiver took it
        self.refused: dict[str, str] = {}  # report_id → why (until configured anew)
        self.blocked: str | None = None  # the token was refused: nothing is sent until configured anew
        self.last_error: str | None = None
        self.last_sent: str | None = None

    def _s(self, key: str) -> Any:
        return setting(ConfigSchema, self.config, key)

    @property
    def state_path(self) -> Path:
        configured = self._s("state_dir")
        base = Path(configured) if configured else Path(get_settings().state_dir) / "outputs" / self.manifest.name
        return base / STATE_FILE

    @property
    def reporter(self) -> str:
        return self._s("reporter") or str(getattr(self.context, "hub_name", "") or "hub")

    def open(self, context: OutputContext) -> None:
        super().open(context)
        try:
            self.received = dict(json.loads(self.state_path.read_text(encoding="utf-8")).get("received", {}))
        except FileNotFoundError:
            self.received = {}
        except (OSError, ValueError, AttributeError) as exc:  # a damaged file: the receiver deduplicates anyway
            log.warning("national_push: %s unreadable (%s); reports may be sent again", self.state_path, exc)
            self.received = {}

    def report_id(self, period: Period) -> str:
        return f"{self.reporter}/{period.id}"

    def report(self, period: Period, now: datetime) -> dict[str, Any]:
        """The body POSTed for `period`."""
        return {"report_id": self.report_id(period), "reporter": self.reporter, "schema": SCHEMA_NAME,
                "period": {"id": period.id, "kind": period.kind, "start": period.first_day.isoformat(),
                           "end": period.last_day.isoformat(), "timezone": str(period.tz)},
                "generated_at": now.isoformat(timespec="seconds"),
                "areas": period_table(self.context, period, self._s("area_code"))}

    def run_periodic(self, now: datetime) -> None:
        """Send every due report the receiver does not have yet, oldest first. A transient failure
        stops the run (the runner tries again with backoff); what was received stays received."""
        if self.blocked:
            raise OutputError(self.blocked)
        for period in due(self.config, ConfigSchema, now):
            rid = self.report_id(period)
            if rid in self.received or rid in self.refused:
                continue
            try:
                answer = post_report(self.config["url"], self.config["token"], self.report(period, now),
                                     self._s("timeout_s"))
            except OutputError as exc:
                self.last_error = str(exc)
                if not exc.transient:
                    self.refused[rid] = str(exc)
                    if isinstance(exc, ReportRefused) and exc.status in (401, 403):
                        self.blocked = str(exc)
                raise
            self._remember(rid, now)
            self.last_sent, self.last_error = rid, None
            log.info("national_push: %s received by %s%s", rid, redacted(self.config["url"]),
                     " (it had it already)" if answer.get("duplicate") else "")
        self.last_error = None  # a run to its end: an outage is over (refusals stay in `refused`)

    def _remember(self, rid: str, now: datetime) -> None:
        self.received[rid] = now.isoformat(timespec="seconds")
        kept = dict(sorted(self.received.items(), key=lambda kv: kv[1])[-MAX_REMEMBERED:])
        self.received = kept
        try:
            write_atomic(self.state_path, (json.dumps({"received": kept}, indent=1) + "\n").encode("utf-8"))
        except OSError as exc:  # the receiver deduplicates: a lost state file costs a repeat, no more
            log.warning("national_push: cannot save %s: %s", self.state_path, exc)

    def health(self) -> Health:
        where = redacted(self.config.get("url", ""))
        if self.blocked:
            return Health(False, self.blocked[:300])
        if self.last_error:
            return Health(False, self.last_error[:300])
        if self.refused:
            rid, why = next(iter(self.refused.items()))
            return Health(False, f"{len(self.refused)} report(s) refused, not sent again: {why}"[:300])
        return Health(True, f"pushing to {where}; last report received: {self.last_sent or 'none since start'}")


@hookimpl
def register_outputs(register: Any) -> None:
    register(NationalPushOutput)
