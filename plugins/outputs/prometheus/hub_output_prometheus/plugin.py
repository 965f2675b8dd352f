"""The `prometheus` output: serves the hub's figures for Prometheus to scrape (see README.md).

It handles no events: every figure is read from the hub's context when Prometheus scrapes
(hub_output_prometheus.collector). Its periodic run only checks that the listener still serves
and starts it again if it stopped.
"""
from __future__ import annotations

import ipaddress
import logging
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from prometheus_client import CollectorRegistry

from hub.contract import Health
from hub.hookspecs import hookimpl
from hub.output import Output, OutputContext, OutputError, OutputManifest

from hub_output_prometheus import __version__
from hub_output_prometheus.collector import HubCollector
from hub_output_prometheus.server import MetricsServer, authorizer, metrics_app

log = logging.getLogger(__name__)
DEFAULT_PORT = 9464


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    host = fields.Str(load_default="127.0.0.1")  # an IPv4 address to listen on
    port = fields.Int(load_default=DEFAULT_PORT, validate=validate.Range(min=1, max=65535))
    path = fields.Str(load_default="/metrics", validate=validate.Regexp(r"^/[A-Za-z0-9/_.-]*$"))
    bearer_token = fields.Str(load_default=None, allow_none=True, load_only=True, validate=validate.Length(min=16))
    username = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1))
    password = fields.Str(load_default=None, allow_none=True, load_only=True, validate=validate.Length(min=12))
    commune_labels = fields.Bool(load_default=False)  # a `commune` label on hub_devices (many more series)
    deliveries_window_s = fields.Float(load_default=86400.0, validate=validate.Range(min=0))  # 0: all history

    @validates_schema
    def _credentials(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("username") is None) != (data.get("password") is None):
            raise ValidationError("username and password go together", "password")
        if not is_loopback(data.get("host", "127.0.0.1")) and not (data.get("bearer_token") or data.get("username")):
            raise ValidationError("listening beyond loopback needs bearer_token or username and password: the "
                                  "figures say which devices are down where", "host")


class PrometheusOutput(Output):
    manifest = OutputManifest(name="prometheus", title="Metrics for Prometheus (scrape endpoint)",
                              version=__version__, config_schema=ConfigSchema, interval_s=30.0)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.server: MetricsServer | None = None
        self.collector: HubCollector | None = None

    @property
    def url(self) -> str:
        port = self.server.port if self.server is not None else self.config["port"]
        return f"http://{self.config['host']}:{port}{self.config['path']}"

    def open(self, context: OutputContext) -> None:
        super().open(context)
        registry = CollectorRegistry(auto_describe=False)
        self.collector = HubCollector(context, commune_labels=self.config["commune_labels"],
                                      deliveries_window_s=self.config["deliveries_window_s"])
        registry.register(self.collector)
        allowed = authorizer(self.config["bearer_token"], self.config["username"], self.config["password"])
        self.server = MetricsServer(self.config["host"], self.config["port"],
                                    metrics_app(registry, self.config["path"], allowed))
        self._listen()

    def _listen(self) -> None:
        assert self.server is not None
        try:
            self.server.start()
        except OSError as exc:  # the port is taken (another process, a runner not yet gone): try later
            raise OutputError(f"cannot listen on {self.config['host']}:{self.config['port']}: {exc.strerror or exc}",
                              transient=True) from None
        log.info("prometheus output: serving %s", self.url)

    def run_periodic(self, now: datetime) -> None:
        if self.server is not None and not self.server.alive:
            log.warning("prometheus output: the listener stopped; starting it again")
            self._listen()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()

    def health(self) -> Health:
        if self.server is None or not self.server.alive:
            return Health(False, f"not serving {self.url}")
        errors = self.collector.last_errors if self.collector is not None else {}
        if errors:
            part, text = next(iter(errors.items()))
            return Health(False, f"the last scrape could not read {part}: {text}"[:300])
        scraped = self.collector.last_scrape_at if self.collector is not None else None
        return Health(True, f"serving {self.url}; last scrape "
                            f"{scraped.isoformat(timespec='seconds') if scraped else 'none yet'}")


@hookimpl
def register_outputs(register: Any) -> None:
    register(PrometheusOutput)
