"""The closed capability vocabulary and what each command verb needs.

Plugins declare a subset of CAPABILITIES; dispatch marks a device `unsupported` when a verb
needs a capability the device lacks. The vocabulary is versioned: adding a name is a minor
change, renaming or removing one is a major change that every plugin must follow.
"""
from __future__ import annotations

VOCABULARY_VERSION = "1.1"  # 1.1: audio.speak_text

CAPABILITIES: dict[str, str] = {
    "audio.play_url": "Fetch and play an audio file or synthesised bulletin by URL",
    "audio.stop": "Stop whatever is playing",
    "audio.volume": "Set and read back the output volume",
    "audio.stream_relay": "Relay a live stream (another station, a live broadcast)",
    "audio.local_schedule": "Hold a broadcast schedule on the device and play it unattended",
    "audio.fm": "Receive and relay an FM station",
    "audio.speak_text": "Speak a bulletin's text on the device",
    "led.text": "Show text on a board",
    "led.text_unicode": "Show Vietnamese text with its diacritics intact",
    "led.image": "Show an image on a board",
    "led.brightness": "Set board brightness",
    "power.switch": "Switch the amplifier or screen power",
    "status.heartbeat": "Report presence periodically so silence means offline",
    "status.signal": "Report link quality (3G/4G/5G/Ethernet/Wi-Fi)",
    "status.faults": "Report fault flags (speaker line, amplifier, power)",
    "security.tls": "Encrypt the control channel",
    "security.auth": "Authenticate the hub and refuse anonymous commands",
}

DEVICE_KINDS = ("speaker", "led_board")

# The bulletin classes of circular 39/2020/TT-BTTTT, lowest first. This order is the only statement
# of which class outranks which (emergency > priority > normal): everything else derives from it.
PRIORITIES = ("normal", "priority", "emergency")
PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
HIGHEST_FIRST = PRIORITIES[::-1]  # e.g. the order workers drain the class queues in
DEFAULT_PRIORITY = PRIORITIES[0]
EMERGENCY = PRIORITIES[-1]


def outranks(a: str, b: str) -> bool:
    """Whether class `a` is strictly above class `b`."""
    return PRIORITY_RANK[a] > PRIORITY_RANK[b]

VERBS = (
    "play",
    "stop",
    "set_volume",
    "relay_start",
    "relay_stop",
    "led_show",
    "led_clear",
    "set_brightness",
    "power",
    "sync_schedule",
)

# A verb needs all capabilities in its set; `play` of a stream content needs relay instead.
VERB_CAPABILITIES: dict[str, frozenset[str]] = {
    "play": frozenset({"audio.play_url"}),
    "stop": frozenset({"audio.stop"}),
    "set_volume": frozenset({"audio.volume"}),
    "relay_start": frozenset({"audio.stream_relay"}),
    "relay_stop": frozenset({"audio.stream_relay"}),
    "led_show": frozenset({"led.text"}),
    "led_clear": frozenset({"led.text"}),
    "set_brightness": frozenset({"led.brightness"}),
    "power": frozenset({"power.switch"}),
    "sync_schedule": frozenset({"audio.local_schedule"}),
}

# Commands that compete for the same thing on a device: a newer one supersedes an older one
# that is still waiting to be sent (a queued volume change is pointless once another follows).
VERB_SLOT: dict[str, str] = {
    "play": "audio",
    "stop": "audio",
    "relay_start": "audio",
    "relay_stop": "audio",
    "set_volume": "volume",
    "led_show": "led",
    "led_clear": "led",
    "set_brightness": "brightness",
    "power": "power",
    "sync_schedule": "schedule",
}


def unknown_capabilities(names: set[str] | frozenset[str] | list[str]) -> list[str]:
    """Names that are not in the vocabulary, sorted (empty when all are known)."""
    return sorted(set(names) - CAPABILITIES.keys())


def required_capabilities(verb: str, content_kind: str | None = None, has_audio: bool = True) -> frozenset[str]:
    """What a device must support to carry out `verb` (with the content kind it plays).
    `has_audio`: whether a text content has been synthesised (hub.content.speech); a `tts_text`
    without audio can only be played by a device that speaks text itself."""
    if verb == "play" and content_kind == "tts_text" and not has_audio:
        return frozenset({"audio.speak_text"})
    if verb == "play" and content_kind == "stream":
        return frozenset({"audio.stream_relay"})
    if verb == "led_show" and content_kind == "led_image":
        return frozenset({"led.image"})
    return VERB_CAPABILITIES[verb]
