"""The per-device arbiter's rule, stated once: what may play over what on one device.

    emergency > live/relay > priority > normal (programme) > idle

* The rank of an item comes from its verb and its bulletin class (hub.capabilities.PRIORITIES):
  a `relay_start` (a live session or a relayed station) of class normal or priority ranks as
  **live**, between priority and emergency; an emergency relay is an emergency; a `play` ranks
  as its class.
* A higher rank **pre-empts** a lower one, on exactly the devices it targets.
* A lower rank never interrupts a higher one: it **waits** until the higher one ends.
* Equal ranks: a newer item **replaces** the one playing (an operator's newer bulletin of the
  same class wins) — except emergencies, which **queue**: the second plays after the first,
  neither cancels the other.
* **Resume**: when the higher item ends, what it interrupted plays again from its start if its
  slot is still open (the command's expires_at has not passed, or it has none); otherwise it is
  recorded as skipped. Devices that arbitrate locally (vendor traits.priority == "device") do
  this themselves; for the others the hub does it (hub.delivery.arbitration, hub.delivery.resume).

Vocabulary: device firmware (and the simulators, which import nothing of the hub) implements the
same rule; tests/test_arbiter_rule.py holds the simulator's copy to this one.
"""
from __future__ import annotations

from datetime import datetime

from hub.capabilities import EMERGENCY, PRIORITIES

RANKS = ("idle", "normal", "priority", "live", "emergency")  # lowest first
RANK = {name: i for i, name in enumerate(RANKS)}
PLAY_VERBS = ("play", "relay_start")  # the verbs that make a device play something

# what an arriving item does to the one playing
PREEMPT, REPLACE, WAIT = "preempt", "replace", "wait"

assert set(PRIORITIES) < set(RANKS)  # the circular's three classes keep their order among the ranks


def rank_name(verb: str, priority: str) -> str:
    """The arbiter rank of an item: its class, or "live" for a non-emergency relay."""
    if verb == "relay_start" and priority != EMERGENCY:
        return "live"
    return priority


def rank(verb: str, priority: str) -> int:
    return RANK[rank_name(verb, priority)]


def decide(new: tuple[str, str], playing: tuple[str, str] | None) -> str:
    """What an arriving (verb, class) does to what plays ((verb, class), or None when idle):
    PREEMPT (it plays now and what played is interrupted, to resume), REPLACE (it plays now and
    what played ends) or WAIT (it plays after)."""
    if playing is None:
        return PREEMPT
    a, b = rank(*new), rank(*playing)
    if a > b:
        return PREEMPT
    if a == b and rank_name(*new) != EMERGENCY:
        return REPLACE
    return WAIT


def may_resume(expires_at: datetime | None, now: datetime) -> bool:
    """Whether an interrupted item's slot is still open, so it plays again (from its start)."""
    return expires_at is None or expires_at > now
