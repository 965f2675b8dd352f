"""Plugin loading and the manifest contract."""
from __future__ import annotations

import types

import pytest

from hub.hookspecs import hookimpl
from hub.plugins import Plugins
from hub.vendor import Manifest, ManifestError, VendorAdapter


def test_a_manifest_with_a_capability_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ManifestError, match="audio.teleport"):
        Manifest(name="x", title="X", version="1", protocols=("p",), device_kinds=("speaker",),
                 capabilities=frozenset({"audio.play_url", "audio.teleport"}))


def test_an_unknown_device_kind_is_refused() -> None:
    with pytest.raises(ManifestError, match="drone"):
        Manifest(name="x", title="X", version="1", protocols=("p",), device_kinds=("drone",),
                 capabilities=frozenset())


def test_entry_points_are_found_and_restricted_by_name() -> None:
    everything = Plugins()
    everything.load_entry_points()
    assert "mqtt_speaker" in everything.vendors()
    none = Plugins()
    none.load_entry_points(only=set())
    assert none.vendors() == {}


def test_a_second_plugin_claiming_a_vendor_name_is_ignored_and_reported() -> None:
    class A(VendorAdapter):
        manifest = Manifest(name="dup", title="A", version="1", protocols=("p",), device_kinds=("speaker",),
                            capabilities=frozenset())

    class B(A):
        pass

    p = Plugins()
    for cls, name in ((A, "a"), (B, "b")):
        mod = types.SimpleNamespace(register_vendors=hookimpl(lambda register, c=cls: register(c)))
        p.register_module(mod, name)
    assert list(p.vendors()) == ["dup"]  # one of the two, the other refused by name
    assert len(p.problems) == 1 and "claims the vendor name dup" in p.problems[0]


def test_a_plugin_that_fails_to_import_is_skipped_and_reported(monkeypatch) -> None:
    import importlib.metadata as md

    real = md.entry_points
    broken = md.EntryPoint(name="broken_vendor", value="hub_no_such_module.plugin", group="hub.vendors")

    def entry_points(group: str):  # noqa: ANN202
        found = list(real(group=group))
        return found + [broken] if group == "hub.vendors" else found

    monkeypatch.setattr(md, "entry_points", entry_points)
    p = Plugins()
    p.load_entry_points()
    assert "mqtt_speaker" in p.vendors()
    assert any("broken_vendor" in problem and "hub_no_such_module" in problem for problem in p.problems)
