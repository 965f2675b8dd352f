"""Live broadcast and relay through the hub's own Icecast: the stations a province relays
(`stations.py`), sessions as the API writes them (`sessions.py`), the `hub relays run` process that
owns Icecast and its sources (`service.py`) and the ffmpeg sources and fallback audio (`sources.py`)."""
