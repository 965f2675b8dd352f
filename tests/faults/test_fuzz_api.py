"""Schemathesis against the API's own OpenAPI document, in process over WSGI.

The app runs with `local_admin` (every role, every area) on a temporary SQLite database and a
fakeredis queue (no shared service is touched). At least 1,000 generated requests; no answer may
be a server error (5xx)."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from hub.config import Settings  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "data"
MIN_REQUESTS = 1000
EXAMPLES_PER_OPERATION = 32

_seen = {"requests": 0, "by_status": {}, "server_errors": []}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    import fakeredis

    from hub.api import create_app
    from hub.access.actors import local_admin
    from hub.plugins import Plugins
    from hub.fleet.registry import import_area_file, upsert_device
    from hub.runtime import Runtime

    tmp = tmp_path_factory.mktemp("fuzz")
    s = Settings(database_url=f"sqlite:///{tmp / 'hub.sqlite3'}", queue=f"fuzz-{uuid.uuid4().hex[:8]}",
                 state_dir=str(tmp / "var"), secret_key="x" * 48)
    plugins = Plugins()
    plugins.load_entry_points()
    rt = Runtime(s, redis=fakeredis.FakeRedis(), plugins=plugins)
    rt.db.create()
    with rt.db.session() as session:
        import_area_file(session, DATA / "legacy-three-level.yaml")
        if "mqtt_speaker" in plugins.vendors():
            for i in range(3):
                upsert_device(session, plugins, {"id": f"SPK-{i}", "vendor": "mqtt_speaker", "kind": "speaker",
                                                 "area_code": "27694", "address": f"spk-{i}", "tags": []})
    app = create_app(rt, authenticator=local_admin)
    app.config["TESTING"] = False  # exceptions become 500 answers, which is what we look for
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield app
    rt.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)


def test_fuzz_no_server_errors(api_schema) -> None:
    """Every operation of the document, EXAMPLES_PER_OPERATION generated cases each. (Driven by
    hand rather than by schemathesis' pytest plugin, which does not load under pytest 9.)"""
    from hypothesis import given

    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) > 10
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def one(case) -> None:
            response = case.call()
            _seen["requests"] += 1
            _seen["by_status"][response.status_code] = _seen["by_status"].get(response.status_code, 0) + 1
            if response.status_code >= 500:
                _seen["server_errors"].append((case.method, case.formatted_path, response.status_code,
                                               response.text[:300]))
        one()
    print(f"\nschemathesis: {len(operations)} operations, {_seen['requests']} requests, "
          f"status counts {sorted(_seen['by_status'].items())}, server errors {len(_seen['server_errors'])}")
    assert not _seen["server_errors"], _seen["server_errors"][:10]
    assert _seen["requests"] >= MIN_REQUESTS
