"""The `event_webhooks` output: each hub event POSTed, signed, to every configured URL that wants
its type, in order per URL, retried with backoff, dead-lettered when it will not go."""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from hub.output import OutputManifest

from hub_output_events import __version__
from hub_output_events.envelope import EventFilter
from hub_output_events.lane import Lane, RetryPolicy
from hub_output_events.storage import PendingFile
from hub_output_events.stream import DESTINATION_NAME, CommonSchema, StreamOutput, events_field
from hub_output_events.webhook import WebhookSender, check_url, redacted

MIN_SECRET_CHARS = 16


class WebhookSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=validate.Regexp(
        DESTINATION_NAME, error="use lower-case letters, digits, '_' and '-' (at most 63)"))
    url = fields.Str(required=True)
    secret = fields.Str(required=True, validate=validate.Length(
        min=MIN_SECRET_CHARS, error=f"at least {MIN_SECRET_CHARS} characters (a random string; an ${{{{ENV}}}} reference works)"))
    events = events_field()
    headers = fields.Dict(keys=fields.Str(), values=fields.Str(), load_default=dict)  # Authorization…
    ca_file = fields.Str(load_default=None, allow_none=True)  # https: a private CA's certificate

    @validates("url")
    def _url(self, value: str, **_: Any) -> None:
        problem = check_url(value)
        if problem:
            raise ValidationError(problem)

    @validates("headers")
    def _headers(self, value: dict[str, str], **_: Any) -> None:
        ours = {"content-type", "x-hub-signature", "x-hub-event-id", "x-hub-event-type", "x-hub-sequence",
                "content-length", "host"}
        clash = sorted(k for k in value if k.lower() in ours)
        if clash:
            raise ValidationError(f"{', '.join(clash)} is set by the output itself")
        if any("\r" in f"{k}{v}" or "\n" in f"{k}{v}" for k, v in value.items()):
            raise ValidationError("a header name or value contains a line break")


class ConfigSchema(CommonSchema):
    class Meta:
        unknown = RAISE

    webhooks = fields.List(fields.Nested(WebhookSchema), required=True, validate=validate.Length(min=1))
    timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=120))
    max_attempts = fields.Int(load_default=10, validate=validate.Range(min=1, max=1000))
    max_age_s = fields.Float(load_default=3600.0, validate=validate.Range(min=1, max=30 * 86400))

    @validates_schema
    def _whole(self, data: dict[str, Any], **_: Any) -> None:
        names = [w["name"] for w in data.get("webhooks", [])]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValidationError(f"webhook name {twice[0]!r} is used twice", "webhooks")
        if data.get("backoff_max_s", 300) < data.get("backoff_initial_s", 1):
            raise ValidationError("must not be less than backoff_initial_s", "backoff_max_s")


def _setting(config: dict[str, Any], key: str) -> Any:
    """A setting, or the schema's default when the output was built without configured()."""
    if key in config:
        return config[key]
    default = ConfigSchema().fields[key].load_default
    return default() if callable(default) else default


class WebhookOutput(StreamOutput):
    manifest = OutputManifest(name="event_webhooks", title="Event stream: signed webhooks",
                              version=__version__, config_schema=ConfigSchema, events=frozenset({"*"}),
                              interval_s=15.0)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.senders: dict[str, WebhookSender] = {}

    def _build_lanes(self) -> list[tuple[Lane, EventFilter]]:
        c = self.config
        policy = RetryPolicy(max_attempts=_setting(c, "max_attempts"), max_age_s=_setting(c, "max_age_s"),
                             backoff_initial_s=_setting(c, "backoff_initial_s"),
                             backoff_max_s=_setting(c, "backoff_max_s"))
        out = []
        for hook in c.get("webhooks") or []:
            sender = WebhookSender(hook["url"], hook["secret"], _setting(c, "timeout_s"), hook.get("headers"),
                                   hook.get("ca_file"))
            self.senders[hook["name"]] = sender
            lane = Lane(hook["name"], sender, policy, self.store, PendingFile(self.state_dir, hook["name"]),
                        _setting(c, "max_queue"), describe=redacted(hook["url"]))
            out.append((lane, EventFilter(hook.get("events"))))
        return out

    def _close_senders(self) -> None:
        for sender in self.senders.values():
            sender.close()
