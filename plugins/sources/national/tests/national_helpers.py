"""The connector configuration that maps the simulator's (made-up) JSON, for the national tests."""
from __future__ import annotations

from typing import Any

from hub_source_national.simulator import Simulator

SEVERITY_MAP = {"1": "normal", "2": "priority", "3": "emergency"}


def config_for(sim: Simulator, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": f"{sim.url}/api", "items_path": "/v1/bulletins", "statistics_path": "/v1/statistics",
        "timeout_s": 5,
        "auth": {"type": "bearer", "token": sim.token},
        "paging": {"mode": "page", "items_field": "data", "page_size": 3},
        "fields": {"external_id": "id", "title": "title", "text": "body.text", "published_at": "issued_at",
                   "area_codes": "areas", "severity": "level", "category": "topic.name",
                   "audio_url": "media.audio"},
        "severity_map": dict(SEVERITY_MAP),
    }
    config.update(overrides)
    return config
