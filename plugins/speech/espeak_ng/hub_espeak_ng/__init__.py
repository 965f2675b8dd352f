"""Offline Vietnamese text-to-speech for the hub, with the espeak-ng program."""

__version__ = "0.1.0"
