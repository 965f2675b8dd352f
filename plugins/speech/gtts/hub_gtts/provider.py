"""gTTS (Google Translate's voice) as a speech provider: a natural Vietnamese voice while the
service answers, never a hang when it does not.

Two things gTTS does by default that a hub broadcasting to loudspeakers cannot accept, changed here
in a subclass rather than by patching the module (which would change it for every user in the
process): it waits forever (`timeout=None`), and it sends with `verify=False`, so anyone on the
path could make the speakers say what they like. Its service URL is configuration
(`service_url`), which is how tests point it at a stand-in on loopback and how a province behind
a proxy of its own would point it elsewhere.
"""
from __future__ import annotations

import base64
import io
import re
import urllib.request
from typing import Any

import requests
from gtts import gTTS
from gtts.tts import gTTSError
from marshmallow import RAISE, Schema, fields, validate

from hub.speech import SpeechError, SpeechManifest, SpeechProvider, SpeechRequest, SpeechResult, Voice

from hub_gtts import __version__

SERVICE_URL = "https://translate.google.com/_/TranslateWebserverUi/data/batchexecute"
# What gtts.tts.gTTS.stream looks for in each line of the batchexecute answer
_AUDIO = re.compile(r'jQ1olc","\[\\"(.*)\\"]')


class ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    service_url = fields.Url(load_default=SERVICE_URL, require_tld=False, schemes={"http", "https"})
    # per request (connect, and each wait for data); the hub's chain also bounds the whole call
    timeout_s = fields.Float(load_default=8.0, validate=validate.Range(min=0.1, max=120))
    verify_tls = fields.Bool(load_default=True)
    slow = fields.Bool(load_default=False)


class _Redirected(gTTS):
    """gTTS with its requests sent to `service_url`, the TLS certificate checked, and a timeout."""

    def __init__(self, text: str, *, service_url: str, verify: bool, **kwargs: Any) -> None:
        super().__init__(text, **kwargs)
        self._service_url, self._verify = service_url, verify

    def _prepare_requests(self) -> list[requests.PreparedRequest]:
        prepared = super()._prepare_requests()
        for request in prepared:
            request.prepare_url(self._service_url, None)
        return prepared

    def stream(self) -> Any:
        # gtts.tts.gTTS.stream, but with verify=self._verify (gTTS hard-codes False)
        for request in self._prepare_requests():
            try:
                with requests.Session() as session:
                    response = session.send(request, verify=self._verify, proxies=urllib.request.getproxies(),
                                            timeout=self.timeout)
                response.raise_for_status()
            except requests.exceptions.HTTPError:
                raise gTTSError(tts=self, response=response) from None
            except requests.exceptions.RequestException as exc:
                raise gTTSError(f"cannot reach the service ({type(exc).__name__})") from None
            found = False
            for line in response.iter_lines(chunk_size=1024):
                decoded = line.decode("utf-8", "replace")
                if "jQ1olc" in decoded:
                    match = _AUDIO.search(decoded)
                    if not match:
                        raise gTTSError(tts=self, response=response)
                    found = True
                    yield base64.b64decode(match.group(1).encode("ascii"))
            if not found:
                raise gTTSError(tts=self, response=response)


class GoogleTts(SpeechProvider):
    manifest = SpeechManifest(name="gtts", title="Google Translate voice (gTTS, needs the internet)",
                              version=__version__, config_schema=ConfigSchema, languages=("vi",),
                              media_types=("audio/mpeg",))

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        # the defaults filled in also when built without configured() (the CLI, a test)
        super().__init__(ConfigSchema().load(dict(config or {})))

    def voices(self) -> list[Voice]:
        return [Voice("vi", "vi", "Google, tiếng Việt")]

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        self.check_request(request)
        cfg = self.config
        try:
            tts = _Redirected(request.text, service_url=cfg["service_url"], verify=cfg["verify_tls"],
                              lang="vi", slow=cfg["slow"] or request.rate < 0.75, timeout=cfg["timeout_s"],
                              lang_check=False)
            buf = io.BytesIO()
            tts.write_to_fp(buf)
        except gTTSError as exc:
            status = getattr(getattr(exc, "rsp", None), "status_code", None)
            # unreachable, overloaded or throttled: a later try may work; anything else is refused
            transient = status is None or status >= 500 or status == 429
            raise SpeechError(f"speech gtts: {exc} ({cfg['service_url']})", transient=transient) from None
        except AssertionError:  # gTTS asserts there is something to say after its own cleaning
            raise SpeechError("speech gtts: nothing speakable in the text") from None
        audio = buf.getvalue()
        if not audio:
            raise SpeechError("speech gtts: the service returned no audio", transient=True)
        return SpeechResult(media_type="audio/mpeg", audio=audio)
