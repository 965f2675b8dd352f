"""What a plugin declares about its devices beyond the capability vocabulary: how the hub must
treat them, and what the conformance suite would otherwise have to be told on the command line.

    Manifest(..., traits=Traits(volume_scale=(1, 15), priority="hub", confirmation="readback",
                                status_list=True))

`priority` and `confirmation` change what the hub does (hub/delivery/arbitration.py, hub/delivery/readback.py);
the rest tells the suite how to judge the devices.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PRIORITY_HANDLING = ("device", "hub")
CONFIRMATIONS = ("ack", "readback")


class TraitsError(ValueError):
    """A plugin declared traits that do not make sense."""


@dataclass(frozen=True)
class Traits:
    # The devices' own volume (and brightness) scale, lowest and highest step, e.g. (1, 15). The
    # adapter converts with hub.units; the suite allows half a step of it when reading back.
    volume_scale: tuple[int, int] | None = None
    # "device": the devices arbitrate the bulletin classes themselves (an emergency pre-empts, a
    # lower class waits). "hub": every play replaces what plays; the hub keeps a lower class from
    # cutting off a higher one (hub/delivery/arbitration.py).
    priority: str = "device"
    # "ack": devices answer each command (Result ACKED, or PENDING and an Ack through listen).
    # "readback": no per-device answer; send() returns PENDING and the hub's ingest confirms the
    # delivery when the device's status shows the command's effect (hub/delivery/readback.py). parse_ack
    # is then not needed.
    confirmation: str = "ack"
    # Status arrives as one list for all devices (a gateway's status list): parse_status gets one
    # device's entry of it, as the adapter splits the list.
    status_list: bool = False
    # The most bytes of text the vendor's boards hold, in the encoding they are sent (UTF-8, or
    # ASCII for a board without Unicode); a device's config `led_text_max_bytes` overrides it
    # for one board. The hub fails a led_show that does not fit a board rather than let the
    # board cut it short (hub/delivery/led_fit.py). None: no limit known.
    led_text_max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.priority not in PRIORITY_HANDLING:
            raise TraitsError(f"traits.priority must be one of {', '.join(PRIORITY_HANDLING)}, not {self.priority!r}")
        if self.confirmation not in CONFIRMATIONS:
            raise TraitsError(f"traits.confirmation must be one of {', '.join(CONFIRMATIONS)}, "
                              f"not {self.confirmation!r}")
        if self.led_text_max_bytes is not None and (
                isinstance(self.led_text_max_bytes, bool) or not isinstance(self.led_text_max_bytes, int)
                or self.led_text_max_bytes < 1):
            raise TraitsError(f"traits.led_text_max_bytes must be a whole number of at least 1, "
                              f"not {self.led_text_max_bytes!r}")
        if self.volume_scale is not None:
            lo, hi = self.volume_scale
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi):
                raise TraitsError(f"traits.volume_scale must be two whole numbers, lowest < highest, "
                                  f"not {self.volume_scale!r}")

    @property
    def level_step(self) -> float | None:
        """One step of the device's scale in the hub's 0–100 units (a 1–15 scale: 7.14)."""
        if self.volume_scale is None:
            return None
        lo, hi = self.volume_scale
        return 100.0 / (hi - lo)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["volume_scale"] = list(self.volume_scale) if self.volume_scale else None
        return d


def traits_of(manifest: Any) -> Traits:
    """A manifest's traits; plugins written before traits existed get the defaults."""
    return getattr(manifest, "traits", None) or Traits()
