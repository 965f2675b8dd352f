"""`hub speech`: hear what the hub would broadcast before a bulletin goes out. `say` speaks a text
through the configured chain (or one provider, or one voice) into an MP3 exactly as devices would
get it, normalised and loudness-corrected; `voices` lists what each installed provider offers."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hub.cli.common import Failure
from hub.hookspecs import hookimpl

if TYPE_CHECKING:
    from hub.speech import SpeechProvider


@click.group("speech")
def speech() -> None:
    """Text-to-speech: try voices, hear a bulletin before it is sent."""


def _installed() -> dict[str, type[SpeechProvider]]:
    from hub.plugins import get_plugins

    return get_plugins().speech_providers()


@speech.command("say")
@click.argument("text")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The MP3 file to write.")
@click.option("--provider", help="Only this provider (default: the chain in speech_providers, in order).")
@click.option("--voice", help="A voice id from `hub speech voices`.")
@click.option("--language", default="vi", show_default=True)
def say(text: str, out: Path, provider: str | None, voice: str | None, language: str) -> None:
    """Speak TEXT into an MP3 file as devices would hear it."""
    from hub.config import get_settings
    from hub.content.normalise import normalise
    from hub.content.speech import provider_chain, speak
    from hub.speech import SpeechError

    settings = get_settings()
    installed = _installed()
    if provider is not None and provider not in installed:
        raise Failure(f"no speech provider named {provider!r} is installed "
                      f"(installed: {', '.join(sorted(installed)) or 'none'})")
    if provider is not None:
        settings.speech_providers = [provider]
    chain, failures = provider_chain(installed, settings)
    voices = None
    if voice is not None:
        chain = [p for p in chain if voice in {v.id for v in p.voices()}]
        if not chain:
            raise Failure(f"no configured provider has the voice {voice!r} (see `hub speech voices`)")
        voices = {p.manifest.name: voice for p in chain}
    spoken = normalise(text, settings.speech_dictionary)
    try:
        mp3, record = speak(spoken, language, settings, chain, failures, voices)
    except SpeechError as exc:
        raise Failure(str(exc)) from None
    out.write_bytes(mp3)
    click.echo(f"read as: {spoken}")
    for failed in record["fallback_from"]:
        click.echo(f"{failed['provider']} failed: {failed['error']}")
    click.echo(f"spoken by {record['provider']} (voice {record['voice'] or 'default'}), "
               f"{record['loudness_lufs']:g} LUFS (target {record['target_lufs']:g}), {len(mp3)} bytes -> {out}")


@speech.command("voices")
def voices() -> None:
    """The voices of each installed speech provider, in the configured order first."""
    from hub.config import get_settings

    settings = get_settings()
    installed = _installed()
    order = [n for n in settings.speech_providers if n in installed] + sorted(set(installed) - set(
        settings.speech_providers))
    for name in settings.speech_providers:
        if name not in installed:
            click.echo(f"{name}: named in speech_providers but not installed")
    for name in order:
        try:
            instance = installed[name].configured(settings.plugin_config(name))
            health, found = instance.health(), instance.voices()
        except Exception as exc:  # a broken provider is reported, the others still listed
            click.echo(f"{name}: cannot be used: {exc}")
            continue
        where = (f"#{settings.speech_providers.index(name) + 1} in speech_providers"
                 if name in settings.speech_providers else "installed, not in speech_providers")
        click.echo(f"{name} ({instance.manifest.title}; {where})"
                   + ("" if health.ok else f": NOT READY: {health.detail}"))
        for v in found:
            click.echo(f"  {v.id:<18} {v.language:<6} {v.name}")
        if not found:
            click.echo("  (no voices available)")


@hookimpl
def register_cli_groups(register: Callable[[click.Command], None]) -> None:
    register(speech)
