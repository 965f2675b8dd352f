"""Settings: each declared once, below, with its type, default, environment variable and a line
of help; `docs/configuration.md` and `hub config show` are made from these declarations.

A value comes from the default, then the YAML file named by HUB_CONFIG, then its environment
variable (HUB_<KEY>), the last one given winning. Secrets never live in the repository: a YAML
value "${NAME}" is read from the environment. A value of the wrong type, an unknown key (a typo
of a safety setting must not be ignored silently) or a value out of range stops the process with
one line naming the file or the variable, the key and what was expected.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hub.addresses import DEFAULT_SERIAL_PREFIXES, parse_net_rule

_ENV_REF = re.compile(r"^\$\{([A-Z0-9_]+)\}$")
HUB_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # the hub_name setting: no ':' (see _check_together)
SECRET_WORDS = ("password", "secret", "token", "key")  # a plugin setting so named is never shown


class ConfigError(ValueError):
    """The configuration is wrong; the message names the file (or variable) and the key."""


# -- the kinds of value ---------------------------------------------------------------------------------
def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError
    return float(v)


def _whole(v: Any) -> int:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError
    return v


def _secret(v: Any) -> str | None:
    return None if v in (None, "") else _text(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError
    return v


def _flag_text(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _numbers(v: Any) -> tuple[float, ...]:
    if not isinstance(v, (list, tuple)):
        raise ValueError
    out = tuple(_number(x) for x in v)
    if any(x < 0 for x in out):
        raise ValueError
    return out


def _texts(v: Any) -> list[str]:
    if not isinstance(v, (list, tuple)):
        raise ValueError
    return [_text(x) for x in v]


def _sections(v: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and (s is None or isinstance(s, dict))
                                          for k, s in v.items()):
        raise ValueError
    return {k: dict(s or {}) for k, s in v.items()}


def _terms(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and k.strip() and isinstance(t, str)
                                          for k, t in v.items()):
        raise ValueError
    return dict(v)


def _loudness(v: Any) -> float:
    value = _number(v)
    if not -40.0 <= value <= -5.0:  # quieter is lost outdoors; louder leaves no room for peaks
        raise ValueError
    return value


def _zone(v: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = _text(v)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError from None
    return name


def _split(raw: str) -> list[str]:
    return [p.strip() for p in raw.split(",") if p.strip()]


@dataclass(frozen=True)
class Kind:
    """What a setting holds: `noun` says it in errors and the docs; `check` turns a YAML value into
    the setting's value and `parse` the text of an environment variable (both raise ValueError)."""

    noun: str
    check: Callable[[Any], Any]
    parse: Callable[[str], Any] | None


SECONDS = Kind("a number of seconds", _number, lambda r: _number(float(r)))
WHOLE_SECONDS = Kind("a whole number of seconds", _whole, int)
DAYS = Kind("a whole number of days", _whole, int)
COUNT = Kind("a whole number", _whole, int)
TEXT = Kind("text", _text, str)
URL = Kind("a URL", _text, str)  # its password is masked wherever it is shown
SECRET = Kind("a secret of at least 32 characters", _secret, str)
FLAG = Kind("true or false", _flag, _flag_text)
SECONDS_LIST = Kind("a list of numbers of seconds (comma-separated in the environment)", _numbers,
                    lambda r: _numbers([float(p) for p in _split(r)]))
TEXT_LIST = Kind("a list of text (comma-separated in the environment)", _texts, _split)
SECTIONS = Kind("a mapping of plugin name to that plugin's settings", _sections, None)
TERMS = Kind("a mapping of text to text", _terms, None)
ZONE = Kind("an IANA time zone name (Asia/Ho_Chi_Minh)", _zone, _zone)
LUFS = Kind("a loudness in LUFS between -40 and -5", _loudness, lambda r: _loudness(float(r)))


@dataclass(frozen=True)
class Declared:
    """One setting: its key in the YAML file, kind, default, environment variable, help, least value."""

    key: str
    kind: Kind
    default: Any
    env: str | None
    help: str
    section: str
    least: float | None


def setting(default: Any, kind: Kind, section: str, help: str, *, least: float | None = None,
            env: str | None = "") -> Any:
    """A Settings field and its declaration; `env` defaults to HUB_<KEY>, None for no variable."""
    if least is None and kind in (SECONDS, WHOLE_SECONDS, DAYS, COUNT):
        least = 0  # no count or duration is negative
    meta = {"kind": kind, "section": section, "help": help, "least": least, "env": env}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta, repr=kind is not SECRET)
    return field(default=default, metadata=meta, repr=kind is not SECRET)


SERVICES, DELIVERY, SCHEDULE, RECOVERY, INGEST, DEVICES, CONSOLE, SOURCES, MEDIA, SPEECH, RELAY, OUTPUTS, PLUGINS = (
    "Services", "Commands and delivery", "Scheduled commands", "Recovery and device health", "Ingest",
    "Where devices may be", "Console, sign-in and secrets", "Content sources", "Media", "Text-to-speech",
    "Live broadcast and relay", "Outputs", "Plugins")


@dataclass
class Settings:
    database_url: str = setting("sqlite:///var/hub.sqlite3", URL, SERVICES,
                                "The database, as an SQLAlchemy URL (postgresql+psycopg://user@host/db in production).")
    redis_url: str = setting("redis://127.0.0.1:6379/0", URL, SERVICES,
                             "Redis, which holds the job queues (redis://USER:${HUB_REDIS_PASSWORD}@host:port/db).")
    queue: str = setting("hub", TEXT, SERVICES,
                         "Prefix of the hub's queue names and Redis keys; hubs sharing a Redis need different ones.")
    api_listen: str = setting("127.0.0.1:8080", TEXT, SERVICES,
                              "Where the API is served (gunicorn -b); devices may never be there.")
    state_dir: str = setting("var", TEXT, SERVICES,
                             "Directory of the generated secret_key and audit_key files when those are not set.")
    hub_name: str = setting("hub", TEXT, SERVICES,
                            "This hub's name among hubs that follow each other (\"vn-national\", \"tinh-80\"): "
                            "its content feed says it, so followers build ids from it and leave out what came "
                            "from them. Lower-case letters, digits, '.', '_', '-'; each hub its own.")
    timezone: str = setting("Asia/Ho_Chi_Minh", ZONE, SERVICES,
                            "The province's time zone: API answers give every time in it, with its offset "
                            "(+07:00); times sent to the hub may carry any offset.")
    default_ttl_s: int = setting(600, WHOLE_SECONDS, DELIVERY,
                                 "A command without expires_at expires this long after it starts.", least=1)
    max_command_ttl_s: int = setting(86400, WHOLE_SECONDS, DELIVERY,
                                     "A command's expires_at may lie at most this long after its start "
                                     "(a stale bulletin is sent again by an operator).", least=1)
    retry_backoff_s: tuple[float, ...] = setting((0.5, 1.0, 2.0), SECONDS_LIST, DELIVERY,
                                                 "Waits before each retry of a transient send failure; "
                                                 "as many retries as entries.")
    batch_size: int = setting(500, COUNT, DELIVERY, "Devices per worker job (an adapter's in-flight window).",
                              least=1)
    worker_heartbeat_s: float = setting(2.0, SECONDS, DELIVERY,
                                        "How often a worker running a job says it is alive; its job counts as dead "
                                        "after four missed beats.", least=0.1)
    # The scheduler (hub.delivery.release) hands a worker the commands due in the next window this
    # long before the first of them starts, so the worker can load rows, build payloads and open its
    # adapter first and publish on time.
    scheduler_lead_s: float = setting(2.0, SECONDS, SCHEDULE,
                                      "Scheduled commands are handed to a worker this long before they start.")
    scheduler_window_s: float = setting(1.0, SECONDS, SCHEDULE,
                                        "Commands starting within this span are handed over together.")
    scheduler_poll_s: float = setting(5.0, SECONDS, SCHEDULE,
                                      "The scheduler looks at the database at least this often (a lost wake-up).",
                                      least=0.01)
    scheduler_lock_ttl_s: float = setting(10.0, SECONDS, SCHEDULE,
                                          "A leading scheduler that stops renewing its lock is replaced after this.",
                                          least=0.1)
    scheduler_quiet_s: float = setting(0.25, SECONDS, SCHEDULE,
                                       "A worker sending scheduled commands records results only when the next "
                                       "start is at least this far away.")
    schedule_horizon_days: int = setting(366, DAYS, SCHEDULE,
                                         "A start_at (or a bulletin's validity) further ahead is refused.", least=1)
    # Programmes (hub.broadcast.materialise): their occurrences become scheduled commands this far
    # ahead, from the scheduler process; a slot is never skipped while it runs at least once per look-ahead.
    programme_materialise_interval_s: float = setting(300.0, SECONDS, SCHEDULE,
                                                      "How often the scheduler turns programmes' coming occurrences "
                                                      "into scheduled commands.", least=1)
    programme_look_ahead_s: float = setting(86400.0, SECONDS, SCHEDULE,
                                            "Occurrences starting within this span are made into commands (at least "
                                            "twice programme_materialise_interval_s).", least=60)
    programme_catch_up_s: float = setting(86400.0, SECONDS, SCHEDULE,
                                          "After an outage, occurrences this far back with no command are sent late "
                                          "if their slot is still open, else recorded as missed.", least=0)
    sweep_interval_s: float = setting(1.0, SECONDS, RECOVERY,
                                      "How often the ingest's sweeper expires overdue deliveries and checks devices.",
                                      least=0.01)
    requeue_after_s: float = setting(60.0, SECONDS, RECOVERY,
                                     "A delivery still queued this long after acceptance, whose job was lost or died, "
                                     "is enqueued again.")
    emergency_requeue_after_s: float = setting(5.0, SECONDS, RECOVERY,
                                               "The same for the emergency class, checked at every sweep.")
    heartbeat_timeout_s: float = setting(180.0, SECONDS, RECOVERY,
                                         "A device silent this long is taken offline.", least=0.01)
    failure_threshold: int = setting(3, COUNT, RECOVERY,
                                     "Consecutive failed deliveries after which a device counts as degraded.",
                                     least=1)
    comeback_window_s: float = setting(30.0, SECONDS, RECOVERY,
                                       "For this long after a device comes back online, what it missed is sent again.")
    comeback_relook_s: float = setting(3.0, SECONDS, RECOVERY,
                                       "How often, within that window, its deliveries are looked at again.",
                                       least=0.01)
    ingest_flush_interval_s: float = setting(0.05, SECONDS, INGEST,
                                             "The ingest writer's pause when nothing was heard.", least=0.001)
    ingest_batch_pause_s: float = setting(0.02, SECONDS, INGEST,
                                          "Its pause after a partial batch (adds at most this to an ack's way "
                                          "into the database).")
    ingest_max_batch: int = setting(5000, COUNT, INGEST, "Most items the ingest writes in one transaction.",
                                    least=1)
    ingest_watch_interval_s: float = setting(30.0, SECONDS, INGEST,
                                             "How often the ingest reloads the devices it listens to and prunes "
                                             "its quarantine.", least=0.01)
    ingest_link_retry_s: float = setting(1.0, SECONDS, INGEST,
                                         "A vendor link down at start-up is retried after this, the wait "
                                         "doubling up to ingest_link_retry_max_s.", least=0.01)
    ingest_link_retry_max_s: float = setting(60.0, SECONDS, INGEST, "The longest wait between those retries.",
                                            least=0.01)
    quarantine_max_rows: int = setting(100_000, COUNT, INGEST,
                                       "The ingest's quarantine keeps the newest this many messages it could not "
                                       "store.", least=1)
    ingest_commit_delay_s: float = setting(0.0, SECONDS, INGEST,
                                           "Fault drills only: hold each batch this long before writing it. Leave 0.")
    device_serial_prefixes: list[str] = setting(list(DEFAULT_SERIAL_PREFIXES), TEXT_LIST, DEVICES,
                                                "Serial ports devices may name, by absolute path prefix.")
    device_networks: list[str] = setting([], TEXT_LIST, DEVICES,
                                         "Hosts/networks and ports network devices and gateways may be at "
                                         "(\"10.80.0.0/16:502\", \"gw.vendor.vn:443\"); none by default. The "
                                         "hub's own Redis, database, broker and API are refused whatever it says.")
    secret_key: str | None = setting(None, SECRET, CONSOLE,
                                     "Signs the console's session cookies, the same on every API host; when unset, "
                                     "one is generated once into the file secret_key in state_dir.")
    audit_key: str | None = setting(None, SECRET, CONSOLE,
                                    "Keys the audit log's hash chain (never stored in the database); when unset, "
                                    "one is generated once into the file audit_key in state_dir.")
    cookie_secure: bool = setting(False, FLAG, CONSOLE, "Behind TLS set true: the browser then sends the session "
                                                        "cookie over https only.")
    session_lifetime_s: int = setting(8 * 3600, WHOLE_SECONDS, CONSOLE, "A console sign-in ends after this.",
                                      least=1)
    login_max_failures: int = setting(10, COUNT, CONSOLE,
                                      "Consecutive failed sign-ins that lock an account for login_lockout_s.", least=1)
    login_lockout_s: int = setting(900, WHOLE_SECONDS, CONSOLE,
                                   "How long a locked account stays locked (an administrator may lift it sooner).",
                                   least=1)
    login_address_max_failures: int = setting(50, COUNT, CONSOLE,
                                              "Failed sign-ins from one address after which it is refused for the "
                                              "rest of login_window_s.", least=1)
    login_window_s: int = setting(900, WHOLE_SECONDS, CONSOLE,
                                  "The window in which an address's failed sign-ins are counted.", least=1)
    login_audit_failures: int = setting(20, COUNT, CONSOLE,
                                        "Failed sign-ins audited one by one per period; further ones are summarised.")
    login_audit_period_s: int = setting(300, WHOLE_SECONDS, CONSOLE, "The period of login_audit_failures.", least=1)
    trusted_proxies: int = setting(0, COUNT, CONSOLE,
                                   "Reverse proxies whose X-Forwarded-For gives the client's address (behind one "
                                   "nginx: 1).")
    sources_file: str = setting("", TEXT, SOURCES,
                                "The YAML file listing content sources (docs/sources.md); re-read when it changes, "
                                "no restart needed. Empty: no sources.")
    source_tick_s: float = setting(5.0, SECONDS, SOURCES,
                                   "How often `hub sources run` looks for due sources and changes to sources_file.",
                                   least=0.01)
    source_fetch_timeout_s: float = setting(60.0, SECONDS, SOURCES,
                                            "A source's fetch that takes longer fails (a source may set timeout_s).",
                                            least=0.1)
    source_backoff_max_s: float = setting(3600.0, SECONDS, SOURCES,
                                          "The longest wait before polling a failing source again (the wait "
                                          "doubles from its interval at each failure in a row).", least=1)
    outputs_file: str = setting("", TEXT, OUTPUTS,
                                "The YAML file listing outputs (metrics, event streams…; docs/outputs.md) that "
                                "`hub outputs run` feeds; re-read when it changes, no restart needed. Empty: none.")
    outputs_tick_s: float = setting(2.0, SECONDS, OUTPUTS,
                                    "How often `hub outputs run` looks for changes to outputs_file and records "
                                    "each output's health.", least=0.01)
    outputs_queue_max: int = setting(10000, COUNT, OUTPUTS,
                                     "Events waiting for one output at most; beyond, new ones are dropped for it "
                                     "(and counted in its health) so a stuck output cannot exhaust memory.",
                                     least=1)
    outputs_retry_s: tuple[float, ...] = setting((1.0, 2.0, 4.0, 8.0, 16.0, 32.0), SECONDS_LIST, OUTPUTS,
                                                 "Waits before each retry of an event (or a periodic run) an "
                                                 "output failed transiently; as many retries as entries, then it "
                                                 "is given up and counted in the output's health.")
    media_store: str = setting("directory", TEXT, MEDIA,
                               "The media store plugin that keeps uploaded audio (its own settings go under "
                               "plugins.<name>).")
    media_dir: str = setting("", TEXT, MEDIA, "Directory of the built-in `directory` media store; empty: "
                             "`media` inside state_dir, beside the hub's other state.")
    public_base_url: str = setting("http://127.0.0.1:8080", URL, MEDIA,
                                   "The hub's address as devices reach it; signed media URLs start with it.")
    media_url_ttl_s: int = setting(3600, WHOLE_SECONDS, MEDIA,
                                   "A signed media URL stays valid this long past its command's expiry (a device "
                                   "may still be fetching the rest of what it began to play).", least=1)
    media_max_upload_bytes: int = setting(50 * 1024 * 1024, COUNT, MEDIA,
                                          "The largest audio file POST /api/media accepts (413 beyond).", least=1)
    speech_providers: list[str] = setting(["gtts", "espeak_ng"], TEXT_LIST, SPEECH,
                                          "Speech providers to try, in order; the next speaks when one fails or "
                                          "times out (end with espeak_ng: it needs no network).")
    speech_emergency_providers: list[str] = setting(["espeak_ng"], TEXT_LIST, SPEECH,
                                                    "Providers for an emergency bulletin, in order: it must be "
                                                    "spoken at once, not after an internet voice's timeout, so "
                                                    "the offline voice by default. Empty: speech_providers.")
    speech_voices: dict[str, str] = setting({}, TERMS, SPEECH,
                                            "A voice per provider ({espeak_ng: vi-vn-x-south}); a provider not "
                                            "named speaks with its default voice.", env=None)
    speech_timeout_s: float = setting(30.0, SECONDS, SPEECH,
                                      "The longest one provider may take to speak a whole bulletin before the "
                                      "next is tried.", least=0.1)
    speech_loudness_lufs: float = setting(-16.0, LUFS, SPEECH,
                                          "Integrated loudness (EBU R128) every synthesised bulletin is normalised "
                                          "to, so devices play all bulletins equally loud at one volume setting.")
    speech_chunk_chars: int = setting(400, COUNT, SPEECH,
                                      "Longer texts are spoken in pieces of at most this many characters, cut at "
                                      "sentence ends.", least=50)
    speech_dictionary: dict[str, str] = setting({}, TERMS, SPEECH,
                                                "The province's own readings, applied before the built-in ones: "
                                                "{\"X.\": \"xã\", \"KCN\": \"khu công nghiệp\"}.", env=None)
    stations_file: str = setting("", TEXT, RELAY,
                                 "The YAML file listing the stations operators may relay (docs/relays.md): id, "
                                 "name, url, optional areas. Read at each use; empty: no stations.")
    icecast_binary: str = setting("", TEXT, RELAY,
                                  "The icecast2 program `hub relays run` starts; empty: icecast2 on the PATH "
                                  "(Debian's /usr/bin/icecast2). Run as nobody when the hub runs as root.")
    icecast_host: str = setting("127.0.0.1", TEXT, RELAY,
                                "The address the hub's Icecast listens on.")
    icecast_port: int = setting(8000, COUNT, RELAY, "The port the hub's Icecast listens on.", least=1)
    icecast_public_url: str = setting("", URL, RELAY,
                                      "Icecast's address as devices and live operators reach it "
                                      "(http://radio.tinh.vn:8000); empty: http://icecast_host:icecast_port.")
    relay_fallback_file: str = setting("", TEXT, RELAY,
                                       "Audio looped on the fallback mount, which listeners hear while a relay's "
                                       "source is missing or silent; empty: a tone generated at start into "
                                       "state_dir.")
    relay_dead_air_s: float = setting(10.0, SECONDS, RELAY,
                                      "No bytes, or silence, on a relay's mount for this long is dead air: it is "
                                      "recorded and the source stopped so listeners fall back.", least=0.5)
    relay_retry_s: float = setting(30.0, SECONDS, RELAY,
                                   "A station whose stream failed or fell silent is tried again after this.",
                                   least=0.1)
    relay_tick_s: float = setting(1.0, SECONDS, RELAY,
                                  "How often `hub relays run` looks at the sessions in the database and at "
                                  "Icecast's counters.", least=0.01)
    relay_bitrate_kbps: int = setting(64, COUNT, RELAY,
                                      "MP3 bit rate of what the hub pushes to Icecast (stations are transcoded, "
                                      "so devices get one format whatever the upstream sends).", least=8)
    plugins: dict[str, dict[str, Any]] = setting({}, SECTIONS, PLUGINS,
                                                 "Each plugin's settings under its name, checked by the plugin's "
                                                 "own schema (see its README).", env=None)
    source: str = "defaults"  # the file the settings were read from

    def __post_init__(self) -> None:
        self.origins: dict[str, str] = {}  # key -> "file" or "env" (absent: the default); not a setting

    def plugin_config(self, name: str) -> dict[str, Any]:
        return dict(self.plugins.get(name) or {})


SETTINGS: tuple[Declared, ...] = tuple(
    Declared(f.name, f.metadata["kind"], f.default_factory() if callable(f.default_factory) else f.default,
             f"HUB_{f.name.upper()}" if f.metadata["env"] == "" else f.metadata["env"], f.metadata["help"],
             f.metadata["section"], f.metadata["least"])
    for f in fields(Settings) if "kind" in f.metadata)
_BY_KEY = {d.key: d for d in SETTINGS}


def redact(value: Any, key: str = "", kind: Kind | None = None) -> Any:
    """`value` fit to show: secrets replaced by whether they are set, a URL's password by ***."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if kind is SECRET or (kind is None and any(w in key.lower() for w in SECRET_WORDS)):
        return None if value in (None, "") else "<set>"
    if isinstance(value, str) and "://" in value and "@" in value:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(value)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    return value


class _FromEnv(str):
    """A YAML value written "${NAME}": text from the environment, read like the variable itself."""


def _expand(value: Any, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", env) for i, v in enumerate(value)]
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        if m:
            if m.group(1) not in env:
                raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return _FromEnv(env[m.group(1)])
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, _FromEnv) else value


def _checked(d: Declared, raw: Any, origin: str, env: bool) -> Any:
    """`raw` as the setting's value, else a ConfigError naming `origin` (the file or the variable),
    the key and what was expected. Text (a variable, a "${NAME}" in the file) is parsed."""
    label = f"{origin} ({d.key})" if env else f"{origin}: {d.key}"
    try:
        text = isinstance(raw, _FromEnv) or env
        value = d.kind.parse(str(raw)) if text and d.kind.parse is not None else d.kind.check(raw)
    except (ValueError, TypeError):
        shown = "a value" if d.kind is SECRET else repr(_plain(raw))
        raise ConfigError(f"{label}: expected {d.kind.noun}, got {shown}") from None
    if d.least is not None and value < d.least:
        raise ConfigError(f"{origin}: {d.key} must be {d.kind.noun} of at least {d.least:g}, not {value!r}")
    return _plain(value)


def _read(path: str, env: Mapping[str, str]) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"HUB_CONFIG={path}: no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping at the top level")
    for key in data:
        if key not in _BY_KEY:
            near = difflib.get_close_matches(str(key), list(_BY_KEY), n=1)
            hint = f" (did you mean {near[0]}?)" if near else " (docs/configuration.md lists the settings)"
            raise ConfigError(f"{path}: unknown key {key!r}{hint}")
    return _expand(data, path, env)  # the environment given, so that a caller's stands alone


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    s = Settings()
    path = env.get("HUB_CONFIG")
    if path:
        for key, raw in _read(path, env).items():
            d = _BY_KEY[key]
            setattr(s, key, _checked(d, raw, path, env=False))
            s.origins[key] = "file"
        s.source = path
    for d in SETTINGS:
        raw = env.get(d.env) if d.env else None
        # an empty variable is unset, but for a list, where it says "none"
        if raw is None or (raw == "" and d.kind not in (TEXT_LIST, SECONDS_LIST)):
            continue
        setattr(s, d.key, _checked(d, raw, d.env, env=True))
        s.origins[d.key] = "env"
    _check_together(s)
    return s


def _where(s: Settings, key: str) -> str:
    d = _BY_KEY[key]
    return f"{d.env} ({key})" if s.origins.get(key) == "env" else f"{s.source}: {key}"


def _check_together(s: Settings) -> None:
    """What no single value's type says: ranges that depend on each other, addresses, key lengths."""
    if s.default_ttl_s > s.max_command_ttl_s:  # else every command without an expires_at is refused
        raise ConfigError(f"{s.source}: default_ttl_s ({s.default_ttl_s}) exceeds max_command_ttl_s "
                          f"({s.max_command_ttl_s})")
    if s.programme_look_ahead_s < 2 * s.programme_materialise_interval_s:  # else a slot may fall between passes
        raise ConfigError(f"{_where(s, 'programme_look_ahead_s')}: {s.programme_look_ahead_s:g} s is less than twice "
                          f"programme_materialise_interval_s ({s.programme_materialise_interval_s:g} s)")
    if not all(p.startswith("/") for p in s.device_serial_prefixes):
        raise ConfigError(f"{_where(s, 'device_serial_prefixes')}: each must be an absolute path prefix "
                          f"(/dev/ttyUSB)")
    for entry in s.device_networks:
        try:
            parse_net_rule(entry)
        except ValueError as exc:
            raise ConfigError(f"{_where(s, 'device_networks')}: {exc}") from None
    if not HUB_NAME.fullmatch(s.hub_name):  # followers split "<hub_name>:<content id>" at the colon
        raise ConfigError(f"{_where(s, 'hub_name')}: {s.hub_name!r} must be 1-63 lower-case letters, digits, "
                          f"'.', '_' or '-', starting with a letter or digit")
    if not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", s.public_base_url):  # devices fetch media by it
        raise ConfigError(f"{_where(s, 'public_base_url')}: expected http(s)://host[:port][/path], "
                          f"not {s.public_base_url!r}")
    if s.icecast_public_url and not re.match(r"^https?://[^/?#@]+/?$", s.icecast_public_url):
        raise ConfigError(f"{_where(s, 'icecast_public_url')}: expected http(s)://host[:port], "
                          f"not {s.icecast_public_url!r}")
    for key in ("secret_key", "audit_key"):
        value = getattr(s, key)
        if value is not None and len(str(value)) < 32:
            raise ConfigError(f"{_where(s, key)} must be at least 32 characters (generate one with "
                              f"`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)")


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings | None) -> None:
    global _settings
    _settings = settings
