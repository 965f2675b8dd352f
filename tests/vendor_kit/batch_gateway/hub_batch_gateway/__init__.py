"""A batch HTTP loudspeaker gateway: status read-back only, volume 1–15, no priority handling."""
__version__ = "0.1.0"
