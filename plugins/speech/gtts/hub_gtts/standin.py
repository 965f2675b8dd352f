"""A stand-in for Google Translate's batchexecute endpoint on loopback, so that the provider and
the hub's speech chain are tested without the internet: it answers each request the way the real
service does (the audio base64-encoded in a `jQ1olc` line) and counts what it was asked."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/_/TranslateWebserverUi/data/batchexecute"


def make_mp3(seconds: float = 1.5) -> bytes:
    """A short MP3 that is not silence (a tone rising and falling like a voice), made with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed (apt-get install ffmpeg)")
    done = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                           f"sine=frequency=220:duration={seconds}", "-af", "tremolo=f=4:d=0.8,volume=-12dB",
                           "-ac", "1", "-ar", "24000", "-b:a", "32k", "-f", "mp3", "-"],
                          capture_output=True, timeout=30, check=True)
    return done.stdout


def answer(audio: bytes) -> bytes:
    """The body batchexecute sends back for one request."""
    inner = json.dumps([base64.b64encode(audio).decode("ascii")])
    row = json.dumps([["wrb.fr", "jQ1olc", inner, None, None, None, "generic"], ["di", 42]], separators=(",", ":"))
    return f")]}}'\n\n{len(row)}\n{row}\n".encode()


class StandIn:
    """`with StandIn(audio) as s:` serves on 127.0.0.1; `s.url` is the provider's service_url,
    `s.texts` what it was asked to say, `s.status` an HTTP status to answer with instead."""

    def __init__(self, audio: bytes, status: int = 200) -> None:
        self.audio, self.status = audio, status
        self.texts: list[str] = []
        self.languages: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def start(self) -> StandIn:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                try:
                    rpc = json.loads(urllib.parse.parse_qs(body)["f.req"][0])
                    text, lang = json.loads(rpc[0][0][1])[:2]
                except (KeyError, ValueError, IndexError, TypeError):
                    self.send_error(400, "not a batchexecute request")
                    return
                owner.texts.append(text)
                owner.languages.append(lang)
                if owner.status != 200 or self.path != PATH:
                    self.send_error(owner.status if owner.status != 200 else 404)
                    return
                data = answer(owner.audio)
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="gtts-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
