"""The `directory` media store: bulletin audio in a directory on the hub's own disk."""
__version__ = "0.1.0"
