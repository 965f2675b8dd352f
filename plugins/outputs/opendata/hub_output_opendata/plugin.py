"""The `opendata` output: the hub's non-personal statistics, per area and period, published as CSV
and JSON files with a Frictionless Table Schema and a Data Package descriptor (see README.md).

Every `interval_s` it looks for periods (yesterday, last week, last month in the province's time
zone) that have ended and settled and are not yet in the directory, reads their figures from the
hub's context and writes them, each file atomically. A published period is not written again;
delete its files to have it made anew.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from hub.config import get_settings
from hub.contract import Health
from hub.hookspecs import hookimpl
from hub.output import Output, OutputContext, OutputError, OutputManifest

from hub_output_opendata import __version__, publish
from hub_output_opendata.common import PeriodicSchema, due, period_table, setting
from hub_output_opendata.rows import csv_bytes, json_bytes

log = logging.getLogger(__name__)
DEFAULT_TITLE = "Thống kê hệ thống thông tin cơ sở"
DEFAULT_DESCRIPTION = ("Số liệu thống kê không chứa thông tin cá nhân của hệ thống thông tin cơ sở (loa truyền "
                       "thanh, bảng tin điện tử) theo đơn vị hành chính và kỳ báo cáo. / Non-personal statistics "
                       "of the grassroots information system by administrative unit and period.")


def own_state(directory: Path) -> str | None:
    """Why `directory` would expose the hub's own state (its secret key, audit key, database) if
    served as open data, or None. A folder inside state_dir is fine; state_dir or one above it not."""
    try:
        state = Path(get_settings().state_dir).resolve()
    except Exception:  # no settings to compare with (a plugin's test): nothing known to protect
        return None
    target = directory.resolve()
    if target == state or target in state.parents:
        return f"{directory} holds the hub's own state ({state}: its keys and database); use a folder of its own"
    return None


class ConfigSchema(PeriodicSchema):
    directory = fields.Str(required=True)  # where the files go; served as it is by a web server
    formats = fields.List(fields.Str(validate=validate.OneOf(publish.FORMATS, error="csv or json")),
                          load_default=lambda: ["csv", "json"], validate=validate.Length(min=1))
    keep = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1))  # periods kept per kind
    name = fields.Str(load_default="grassroots-information-statistics",
                      validate=validate.Regexp(r"^[a-z0-9._-]{1,100}$", error="lower-case letters, digits, . _ -"))
    title = fields.Str(load_default=DEFAULT_TITLE, validate=validate.Length(min=1, max=200))
    description = fields.Str(load_default=DEFAULT_DESCRIPTION, validate=validate.Length(max=2000))
    publisher = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    license = fields.Str(load_default="CC-BY-4.0", validate=validate.Length(min=1, max=100))
    license_url = fields.Str(load_default="https://creativecommons.org/licenses/by/4.0/", allow_none=True)

    @validates("directory")
    def _directory(self, value: str, **_: Any) -> None:
        path = Path(value)
        if not path.is_absolute():
            raise ValidationError(f"{value!r}: an absolute path (the runner's working folder may change)")
        if path.exists() and not path.is_dir():
            raise ValidationError(f"{value}: exists and is not a folder")
        problem = own_state(path)
        if problem:
            raise ValidationError(problem)

    @validates("formats")
    def _formats(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("a format is named twice")


class OpenDataOutput(Output):
    manifest = OutputManifest(name="opendata", title="Open data: statistics as CSV and JSON with a table schema",
                              version=__version__, config_schema=ConfigSchema, interval_s=300.0)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.last_published: str | None = None  # the last period written
        self.last_run_at: datetime | None = None
        self.last_error: str | None = None

    @property
    def directory(self) -> Path:
        return Path(self.config["directory"])

    def _s(self, key: str) -> Any:
        return setting(ConfigSchema, self.config, key)

    def open(self, context: OutputContext) -> None:
        super().open(context)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot make {self.directory}: {exc.strerror or exc}") from None

    def meta(self) -> dict[str, Any]:
        return {k: self._s(k) for k in ("name", "title", "description", "publisher", "license", "license_url")}

    def run_periodic(self, now: datetime) -> None:
        """Publish every due period not yet in the directory; then the Data Package, and prune."""
        self.last_run_at = now
        try:
            written = self.publish_due(now)
        except OutputError as exc:
            self.last_error = str(exc)
            raise
        except OSError as exc:  # a full disk, a folder made read-only: worth trying again
            self.last_error = f"cannot write to {self.directory}: {exc.strerror or exc}"
            raise OutputError(self.last_error, transient=True) from None
        self.last_error = None
        if written:
            log.info("opendata: published %s into %s", ", ".join(written), self.directory)

    def publish_due(self, now: datetime) -> list[str]:
        formats = self._s("formats")
        written = []
        for period in due(self.config, ConfigSchema, now):
            have = publish.published(self.directory, period.kind).get(period.slug, set())
            if set(formats) <= have:
                continue
            self.publish(period)
            written.append(period.id)
        if written or not (self.directory / publish.PACKAGE_FILE).exists():
            for kind in self._s("periods"):
                publish.prune(self.directory, kind, self._s("keep"))
            publish.publish_package(self.directory, self.meta(), now)
        return written

    def publish(self, period: Any) -> None:
        """Write `period`'s files (whatever is there already is replaced, atomically)."""
        table = period_table(self.context, period, self._s("area_code"))
        makers = {"csv": csv_bytes, "json": json_bytes}
        publish.publish_period(self.directory, period.kind, period.slug,
                               {fmt: makers[fmt](table) for fmt in self._s("formats")})
        self.last_published = period.id

    def health(self) -> Health:
        if self.last_error:
            return Health(False, self.last_error[:300])
        if self.last_run_at is None:
            return Health(True, f"publishing into {self.directory}; first run due")
        return Health(True, f"publishing into {self.directory}; last period written: {self.last_published or 'none'}")


@hookimpl
def register_outputs(register: Any) -> None:
    register(OpenDataOutput)
