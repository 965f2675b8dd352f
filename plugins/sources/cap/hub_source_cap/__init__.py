"""CAP 1.2 alerts as a hub content source (entry point `hub.sources: cap`, see hub_source_cap.plugin)."""
__version__ = "0.1.0"
