"""Classes that break their contract: no manifest; an output declaring events without handle()."""
from hub.hookspecs import hookimpl
from hub.output import Output, OutputManifest
from hub.speech import SpeechProvider


class NoManifest(SpeechProvider):
    def voices(self):
        return []

    def synthesize(self, request):
        raise NotImplementedError


class DeafOutput(Output):
    manifest = OutputManifest(name="deaf_output", title="Declares events, cannot take them", version="0.1.0",
                              events=frozenset({"device.offline"}))


@hookimpl
def register_speech_providers(register):
    register(NoManifest)


@hookimpl
def register_outputs(register):
    register(DeafOutput)
