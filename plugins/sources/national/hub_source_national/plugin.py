"""The `national` source: bulletins pulled from the national source-information system, and the
province's statistics pushed back to it.

Everything specific to that system is configuration (see README): the paths of the bulletin list
and the statistics endpoint, the authentication, the paging style, where each field sits in an
item and how its severity values map to the hub's classes.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from hub.capabilities import PRIORITIES
from hub.contract import check_json
from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceError, SourceItem, SourceManifest

from hub_source_national import __version__
from hub_source_national.client import Client, check_url
from hub_source_national.mapping import FIELDS, dig, to_item

log = logging.getLogger(__name__)
AUTH_TYPES = ("none", "bearer", "header", "token_endpoint")
AUTH_NEEDS = {"bearer": ("token",), "header": ("header_name", "header_value"),
              "token_endpoint": ("token_url", "client_id", "client_secret")}
PAGING_MODES = ("page", "cursor", "next_link", "none")


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class AuthSchema(_Strict):
    type = fields.Str(load_default="none", validate=validate.OneOf(AUTH_TYPES))
    token = fields.Str(load_only=True)  # bearer
    header_name = fields.Str()  # header
    header_value = fields.Str(load_only=True)
    token_url = fields.Str()  # token_endpoint: a path under base_url or a URL on its host
    client_id = fields.Str()
    client_secret = fields.Str(load_only=True)
    scope = fields.Str()
    token_format = fields.Str(load_default="form", validate=validate.OneOf(("form", "json")))
    token_field = fields.Str(load_default="access_token")

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        missing = [k for k in AUTH_NEEDS.get(data.get("type", "none"), ()) if not data.get(k)]
        if missing:
            raise ValidationError(f"auth type {data['type']!r} needs {', '.join(missing)}", field_name="type")


class PagingSchema(_Strict):
    mode = fields.Str(load_default="page", validate=validate.OneOf(PAGING_MODES))
    items_field = fields.Str(load_default="items")  # where the list is in each answer; "" = the answer is the list
    page_param = fields.Str(load_default="page")
    size_param = fields.Str(load_default="size")
    page_size = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))
    first_page = fields.Int(load_default=1, validate=validate.Range(min=0))
    next_field = fields.Str(load_default="next")  # cursor or next_link: where the answer says what follows
    cursor_param = fields.Str(load_default="cursor")
    max_pages = fields.Int(load_default=20, validate=validate.Range(min=1, max=1000))


class FieldsSchema(_Strict):
    external_id = fields.Str(load_default="id")
    title = fields.Str(load_default="title")
    text = fields.Str(load_default="text")
    published_at = fields.Str(load_default="published_at")
    expires_at = fields.Str(load_default=None, allow_none=True)
    area_codes = fields.Str(load_default=None, allow_none=True)
    severity = fields.Str(load_default=None, allow_none=True)
    category = fields.Str(load_default=None, allow_none=True)
    audio_url = fields.Str(load_default=None, allow_none=True)
    url = fields.Str(load_default=None, allow_none=True)
    language = fields.Str(load_default=None, allow_none=True)


class ConfigSchema(_Strict):
    base_url = fields.Str(required=True)
    items_path = fields.Str(required=True)
    statistics_path = fields.Str(load_default=None, allow_none=True)  # where push_statistics POSTs
    timeout_s = fields.Float(load_default=15.0, validate=validate.Range(min=0.1, max=300))
    auth = fields.Nested(AuthSchema, load_default=lambda: AuthSchema().load({}))
    paging = fields.Nested(PagingSchema, load_default=lambda: PagingSchema().load({}))
    fields_ = fields.Nested(FieldsSchema, data_key="fields", load_default=lambda: FieldsSchema().load({}))
    severity_map = fields.Dict(keys=fields.Str(), values=fields.Str(validate=validate.OneOf(PRIORITIES)),
                               load_default=dict)
    query = fields.Dict(keys=fields.Str(), values=fields.Raw(), load_default=dict)  # added to every list request
    since_param = fields.Str(load_default=None, allow_none=True)  # e.g. updated_since: ISO 8601 of `since`
    language = fields.Str(load_default="vi", allow_none=True)
    utc_offset_hours = fields.Float(load_default=7.0, validate=validate.Range(min=-14, max=14))  # for naive times

    @validates("base_url")
    def _http_only(self, value: str, **_: Any) -> None:
        try:
            check_url(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with defaults filled in, whether or not it came through configured()."""
    if "fields_" in config:
        return config
    try:
        return ConfigSchema().load(config)
    except ValidationError as exc:
        raise SourceError(f"source national: configuration: {exc.messages}") from None


class NationalSource(Source):
    manifest = SourceManifest(name="national", title="National source-information system (configurable JSON)",
                              version=__version__, config_schema=ConfigSchema, formats=("json",),
                              min_interval_s=60)

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._client: Client | None = None  # keeps a token-endpoint token between calls

    @property
    def settings(self) -> dict[str, Any]:
        return _settings(self.config)

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            try:
                self._client = Client(s["base_url"], s["auth"], s["timeout_s"])
            except ValueError as exc:
                raise SourceError(str(exc)) from None
        return self._client

    def _pages(self, since: datetime | None, max_pages: int | None = None) -> list[Any]:
        """The raw items of every page, following the configured paging style."""
        s, client = self.settings, self.client
        paging = s["paging"]
        query = dict(s["query"])
        if since is not None and s["since_param"]:
            query[s["since_param"]] = since.isoformat()
        mode, limit = paging["mode"], max_pages or paging["max_pages"]
        if mode == "page":
            query[paging["size_param"]] = paging["page_size"]
        rows: list[Any] = []
        url = client.url(s["items_path"])
        page, cursor = paging["first_page"], None
        for n in range(limit):
            params = dict(query)
            if mode == "page":
                params[paging["page_param"]] = page + n
            elif mode == "cursor" and cursor is not None:
                params[paging["cursor_param"]] = cursor
            current = client.url(url, params) if mode != "next_link" or n == 0 else url
            answer = client.request("GET", current)
            batch = dig(answer, paging["items_field"])
            if not isinstance(batch, list):
                raise SourceError(f"{url}: the answer has no list of items at {paging['items_field']!r}")
            rows.extend(batch)
            following = dig(answer, paging["next_field"]) if mode in ("cursor", "next_link") else None
            if mode == "none" or (mode == "page" and len(batch) < paging["page_size"]) or (
                    mode != "page" and following in (None, "")) or not batch:
                return rows
            if mode == "cursor":
                cursor = following
            elif mode == "next_link":
                url = client.follow(current, str(following))  # refuses a link to another host
        log.warning("source national %s: stopped after max_pages=%d pages; more items wait", s["base_url"], limit)
        return rows

    def _items(self, rows: list[Any]) -> tuple[list[SourceItem], list[str]]:
        s = self.settings
        tz = timezone(timedelta(hours=s["utc_offset_hours"]))
        items, refused, seen = [], [], set()
        for row in rows:
            try:
                item = to_item(row, s["fields_"], s["severity_map"], self.client.base_url, s["language"], tz)
            except SourceError as exc:  # one malformed bulletin must not hold up the others
                refused.append(str(exc))
                continue
            if item.external_id not in seen:  # an item moving between pages while we read shows twice
                seen.add(item.external_id)
                items.append(item)
        for reason in refused:
            log.warning("source national %s: item skipped: %s", s["base_url"], reason)
        return items, refused

    def test(self) -> SourceCheck:
        try:
            items, refused = self._items(self._pages(None, max_pages=1))
        except SourceError as exc:
            return SourceCheck(False, str(exc))
        detail = f"{len(items)} items on the first page"
        if refused:
            detail += f"; {len(refused)} skipped, first: {refused[0]}"
        return SourceCheck(not (refused and not items), detail, tuple(items[:3]))

    def fetch(self, since: datetime | None) -> list[SourceItem]:
        return self._items(self._pages(since))[0]

    def push_statistics(self, report: dict[str, Any]) -> None:
        """POST `report` as JSON to `statistics_path` with the source's authentication.

        The report's shape is the caller's (the national format is not public); it must be a JSON
        object. Raises SourceError: transient for timeouts and 5xx, naming auth for 401/403, and
        when no `statistics_path` is configured."""
        s = self.settings
        if not s["statistics_path"]:
            raise SourceError("source national: statistics_path is not configured; nowhere to push statistics")
        if not isinstance(report, dict):
            raise SourceError(f"statistics report must be a JSON object, not {type(report).__name__}")
        check_json(report, "statistics report", SourceError)
        self.client.request("POST", self.client.url(s["statistics_path"]), report)


@hookimpl
def register_sources(register):  # type: ignore[no-untyped-def]
    register(NationalSource)
