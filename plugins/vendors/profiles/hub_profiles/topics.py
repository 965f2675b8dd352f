"""Topics the MQTT driver listens on: the subscription filter and how to read the address back."""
from __future__ import annotations

import re
from dataclasses import dataclass

from hub_profiles.template import Template


@dataclass(frozen=True)
class Route:
    """One topic template the hub listens on, resolved for a prefix."""

    template: Template
    subscription: str
    regex: re.Pattern[str]

    @classmethod
    def of(cls, template: Template, prefix: str | None) -> Route:
        fixed = {"prefix": prefix or ""}
        rx, _names = template.pattern(fixed, level=True)
        # Validation made {address} a whole level and the only free placeholder.
        sub = "".join(p if isinstance(p, str) else (fixed[p.name] if p.name == "prefix" else "+")
                      for p in template.parts)
        return cls(template, sub, rx)

    def address(self, topic: str) -> str | None:
        m = self.regex.match(topic)
        return m.group("g0") if m else None


def address_problem(address: str) -> str | None:
    if not address or set(address) & set("/+#") or "\x00" in address:
        return f"device address {address!r} cannot be an MQTT topic level (it must not contain / + # or be empty)"
    return None


def topic_problem(topic: str) -> str | None:
    if not topic or set(topic) & set("+#") or "//" in topic or topic.startswith("/") or topic.endswith("/"):
        return f"rendered topic {topic!r} is not a valid topic to publish to"
    return None
