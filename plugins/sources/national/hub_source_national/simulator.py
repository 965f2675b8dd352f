"""A stand-in for the national source-information system, for tests and demonstrations.

Its JSON is this simulator's own, made up to exercise the connector's configurable mapping; it
is NOT the national system's exchange format (which is not public). It serves:

  POST /oauth/token          client_credentials (form or JSON) → {"access_token", "expires_in"}
  GET  /api/v1/bulletins     ?page=&size=  or  ?cursor=  → {"data": [...], "page", "size", "total",
                             "next": "/api/v1/bulletins?page=…" or null, "next_cursor": "…" or null}
  POST /api/v1/statistics    a JSON object; recorded in `statistics`, answered 202
  POST /api/v1/reports       a period's statistics report (see `report_problem`), kept in `reports`
                             by its `report_id`: 201 the first time, 200 "duplicate" after (the
                             first one is kept), 422 naming the field when the body is wrong

Every /api/ request needs `Authorization: Bearer <token>` (the fixed token or one the token
endpoint issued) or, when `api_key` is set, `X-API-Key: <api_key>`; else 401.

Run one: `hub-national-sim --port 8090` (prints its URL and token), or in a test:
`with Simulator(items=...) as sim: sim.url`. It never imports the hub.
"""
from __future__ import annotations

import argparse
import json
import secrets
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ITEMS_PATH = "/api/v1/bulletins"
STATS_PATH = "/api/v1/statistics"
REPORTS_PATH = "/api/v1/reports"
PERIOD_KINDS = ("day", "week", "month")
REPORT_COUNTS = ("devices", "bulletins", "deliveries", "deliveries_acked", "emergency_targeted",
                 "emergency_acked", "not_played")
TOKEN_PATH = "/oauth/token"


def sample_items(n: int = 7) -> list[dict[str, Any]]:
    """`n` bulletins in the simulator's format, newest first, levels cycling 1 (normal) to 3."""
    start = datetime(2025, 9, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    topics = ["Phòng chống thiên tai", "Y tế", "An ninh trật tự"]
    return [{"id": f"SIM-{i:04d}", "title": f"Bản tin số {i}: thông báo của tỉnh",
             "body": {"text": f"Nội dung bản tin số {i}. Đề nghị bà con theo dõi."},
             "issued_at": (start - timedelta(hours=i)).isoformat(), "areas": ["80", f"80{i:03d}"],
             "level": 1 + i % 3, "topic": {"name": topics[i % 3]},
             "media": {"audio": f"/media/sim-{i:04d}.mp3"}} for i in range(1, n + 1)]


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.strptime(value, "%Y-%m-%d") is not None
    except ValueError:
        return False


def report_problem(report: Any) -> str | None:
    """What is wrong with a pushed report, naming the field, or None. A report is
    {"report_id": str, "period": {"id", "kind": day|week|month, "start", "end": YYYY-MM-DD},
    "areas": [{"area_code", "area_name", counts ≥ 0 …}, …]} and may carry more keys."""
    if not isinstance(report, dict):
        return "a JSON object is expected"
    if not isinstance(report.get("report_id"), str) or not 0 < len(report["report_id"]) <= 200:
        return "report_id: a string of 1 to 200 characters is required"
    period = report.get("period")
    if not isinstance(period, dict):
        return "period: an object is required"
    if not isinstance(period.get("id"), str) or not period["id"]:
        return "period.id: required"
    if period.get("kind") not in PERIOD_KINDS:
        return f"period.kind: one of {', '.join(PERIOD_KINDS)}"
    for key in ("start", "end"):
        if not _is_date(period.get(key)):
            return f"period.{key}: a date (YYYY-MM-DD) is required"
    if period["start"] > period["end"]:
        return "period.end: before period.start"
    areas = report.get("areas")
    if not isinstance(areas, list) or not areas:
        return "areas: a non-empty list is required"
    for i, area in enumerate(areas):
        if not isinstance(area, dict):
            return f"areas[{i}]: an object is expected"
        for key in ("area_code", "area_name"):
            if not isinstance(area.get(key), str) or not area[key]:
                return f"areas[{i}].{key}: required"
        for key in REPORT_COUNTS:
            value = area.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"areas[{i}].{key}: a count (an integer ≥ 0) is required"
    return None


class Simulator:
    """The server in a thread on 127.0.0.1 (port 0: a free one). Records requests and pushes."""

    def __init__(self, items: list[dict[str, Any]] | None = None, *, token: str | None = None,
                 client_id: str = "province-80", client_secret: str | None = None, api_key: str | None = None,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.items = list(sample_items() if items is None else items)
        self.token = token or secrets.token_urlsafe(16)
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(16)
        self.api_key = api_key
        self.echo = False  # print each statistics push (the command-line simulator does)
        self.issued: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.statistics: list[dict[str, Any]] = []
        self.reports: dict[str, dict[str, Any]] = {}  # report_id → the first report received with it
        self.report_posts: list[tuple[str | None, int]] = []  # (report_id, status answered) per POST
        self.report_faults: list[int] = []  # statuses to answer the next report POSTs with, first first
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="national-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authorised(self, headers: Any) -> bool:
        given = headers.get("Authorization", "")
        if given.startswith("Bearer ") and given[7:] in ({self.token} | self.issued):
            return True
        return self.api_key is not None and headers.get("X-API-Key") == self.api_key

    def _page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        size = max(1, min(int(query.get("size", ["20"])[0]), 1000))
        if "cursor" in query:  # the cursor is the offset, opaque to clients
            offset = int(query["cursor"][0])
            page = offset // size + 1
        else:
            page = max(1, int(query.get("page", ["1"])[0]))
            offset = (page - 1) * size
        data = self.items[offset:offset + size]
        more = offset + size < len(self.items)
        return {"data": data, "page": page, "size": size, "total": len(self.items),
                "next": f"{ITEMS_PATH}?page={page + 1}&size={size}" if more else None,
                "next_cursor": str(offset + size) if more else None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="national-sim"')
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                with sim._lock:
                    sim.requests.append(("GET", self.path))
                parts = urlsplit(self.path)
                if parts.path != ITEMS_PATH:
                    return self._send(404, {"error": "not found"})
                if not sim._authorised(self.headers):
                    return self._send(401, {"error": "missing or invalid token"})
                try:
                    return self._send(200, sim._page(parse_qs(parts.query)))
                except ValueError:
                    return self._send(400, {"error": "page, size and cursor are integers"})

            def do_POST(self) -> None:  # noqa: N802
                with sim._lock:
                    sim.requests.append(("POST", self.path))
                body = self._body()
                if self.path == TOKEN_PATH:
                    return self._token(body)
                if self.path == REPORTS_PATH:
                    return self._report(body)
                if self.path != STATS_PATH:
                    return self._send(404, {"error": "not found"})
                if not sim._authorised(self.headers):
                    return self._send(401, {"error": "missing or invalid token"})
                try:
                    report = json.loads(body.decode("utf-8"))
                except ValueError:
                    return self._send(400, {"error": "not JSON"})
                if not isinstance(report, dict):
                    return self._send(400, {"error": "a JSON object is expected"})
                with sim._lock:
                    sim.statistics.append(report)
                if sim.echo:
                    print(f"statistics received: {json.dumps(report, ensure_ascii=False)}", flush=True)
                return self._send(202, {"accepted": True})

            def _report(self, body: bytes) -> None:
                status, answer, report_id = self._judge_report(body)
                with sim._lock:
                    sim.report_posts.append((report_id, status))
                return self._send(status, answer)

            def _judge_report(self, body: bytes) -> tuple[int, dict[str, Any], str | None]:
                with sim._lock:
                    fault = sim.report_faults.pop(0) if sim.report_faults else None
                if fault is not None:  # a test's outage: the report is not kept
                    return fault, {"error": f"simulated HTTP {fault}"}, None
                if not sim._authorised(self.headers):
                    return 401, {"error": "missing or invalid token"}, None
                try:
                    report = json.loads(body.decode("utf-8"))
                except ValueError:
                    return 400, {"error": "not JSON"}, None
                problem = report_problem(report)
                if problem:
                    return 422, {"error": problem}, None
                report_id = report["report_id"]
                key = self.headers.get("Idempotency-Key")
                if key is not None and key != report_id:
                    return 400, {"error": "Idempotency-Key differs from report_id"}, report_id
                with sim._lock:
                    duplicate = report_id in sim.reports
                    sim.reports.setdefault(report_id, report)
                if duplicate:
                    return 200, {"accepted": False, "duplicate": True, "report_id": report_id}, report_id
                if sim.echo:
                    print(f"report received: {report_id} ({len(report['areas'])} areas)", flush=True)
                return 201, {"accepted": True, "report_id": report_id}, report_id

            def _token(self, body: bytes) -> None:
                text = body.decode("utf-8", "replace")
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    try:
                        form = {k: str(v) for k, v in json.loads(text).items()}
                    except (ValueError, AttributeError):
                        return self._send(400, {"error": "invalid_request"})
                else:
                    form = {k: v[0] for k, v in parse_qs(text).items()}
                if form.get("grant_type") != "client_credentials":
                    return self._send(400, {"error": "unsupported_grant_type"})
                if (form.get("client_id"), form.get("client_secret")) != (sim.client_id, sim.client_secret):
                    return self._send(401, {"error": "invalid_client"})
                token = secrets.token_urlsafe(16)
                with sim._lock:
                    sim.issued.add(token)
                return self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hub-national-sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--token", help="the fixed bearer token (default: a random one, printed)")
    parser.add_argument("--client-id", default="province-80")
    parser.add_argument("--client-secret", help="for the token endpoint (default: a random one, printed)")
    parser.add_argument("--items", type=int, default=7, help="how many sample bulletins to serve")
    parser.add_argument("--items-file", help="a JSON file with a list of items to serve instead")
    args = parser.parse_args(argv)
    items = sample_items(args.items)
    if args.items_file:
        with open(args.items_file, encoding="utf-8") as f:
            items = json.load(f)
    sim = Simulator(items, token=args.token, client_id=args.client_id, client_secret=args.client_secret,
                    host=args.host, port=args.port)
    sim.echo = True
    print(f"national-system simulator on {sim.url}{ITEMS_PATH} ({len(sim.items)} items)")
    print(f"bearer token: {sim.token}")
    print(f"token endpoint: {sim.url}{TOKEN_PATH} client_id={sim.client_id} client_secret={sim.client_secret}")
    print(f"statistics: POST {sim.url}{STATS_PATH}", flush=True)
    print(f"reports: POST {sim.url}{REPORTS_PATH}", flush=True)
    try:
        sim.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.httpd.server_close()


if __name__ == "__main__":
    main()
