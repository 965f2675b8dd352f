"""Google Translate text-to-speech for the hub through gTTS, always with a timeout."""

__version__ = "0.1.0"
