"""A second source that claims the name `sample_feed` (hub_kinds_sample holds it)."""
from hub.hookspecs import hookimpl
from hub.source import Source, SourceCheck, SourceManifest


class Impostor(Source):
    manifest = SourceManifest(name="sample_feed", title="Another source with the same name", version="0.1.0")

    def test(self):
        return SourceCheck(True)

    def fetch(self, since):
        return []


@hookimpl
def register_sources(register):
    register(Impostor)
