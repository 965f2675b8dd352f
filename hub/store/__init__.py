"""The store: the database engine and sessions, the tables, the migrations between schema versions.

The lowest layer: it imports nothing of the hub but the top-level vocabulary."""
