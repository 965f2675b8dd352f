"""Packaging, discovery, manifest and configuration."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import pytest

from hub.capabilities import CAPABILITIES
from hub.config import Settings
from hub.runtime import Runtime
from hub.vendor import DeviceRef, Outcome

from hub_http_gateway.adapter import NOT_CONFIGURED, HttpGatewayAdapter, HttpGatewayConfigSchema
from hub_http_gateway.plugin import make_gateway
from http_gateway_helpers import envelope, free_port, only_this_plugin, outgoing


def test_entry_point_is_declared() -> None:
    eps = {ep.name: ep for ep in md.entry_points(group="hub.vendors")}
    assert "http_gateway" in eps
    assert eps["http_gateway"].value == "hub_http_gateway.plugin"
    assert eps["http_gateway"].dist is not None and eps["http_gateway"].dist.name == "hub-vendor-http-gateway"


def test_hub_plugin_manager_yields_the_adapter_and_the_simulator() -> None:
    plugins = only_this_plugin()
    assert plugins.vendors() == {"http_gateway": HttpGatewayAdapter}
    assert plugins.simulators()["http_gateway"] is make_gateway
    described = plugins.describe()
    assert described[0]["distribution"] == "hub-vendor-http-gateway"
    assert described[0]["vendors"][0]["name"] == "http_gateway"


def test_manifest() -> None:
    m = HttpGatewayAdapter.manifest
    assert m.name == "http_gateway"
    assert m.version == md.version("hub-vendor-http-gateway")
    assert m.device_kinds == ("speaker",)
    assert m.capabilities <= CAPABILITIES.keys()
    assert set(m.capabilities) == {"audio.play_url", "audio.stop", "audio.volume", "audio.stream_relay",
                                   "status.heartbeat", "status.signal", "security.auth", "security.tls"}
    props = m.to_dict()["config_schema"]["properties"]
    assert {"base_url", "api_key", "timeout_s", "batch_limit", "poll_interval_s", "verify_tls",
            "ca_file"} <= set(props)
    assert props["batch_limit"]["default"] == 100


def test_config_defaults() -> None:
    s = HttpGatewayConfigSchema().load({"base_url": "https://gw.example.vn/hub", "api_key": "k-1"})
    assert s["timeout_s"] == 10 and s["batch_limit"] == 100 and s["poll_interval_s"] == 30
    assert s["verify_tls"] is True and s["ca_file"] is None and s["allow_insecure_http"] is False
    # What the Runtime hands the adapter is already loaded; loading it again must not change it.
    assert HttpGatewayConfigSchema().load(s) == s


@pytest.mark.parametrize(("config", "field"), [
    ({"base_url": "http://127.0.0.1:8480"}, "api_key"),
    ({"api_key": "k"}, "base_url"),
    ({"base_url": "ftp://127.0.0.1/", "api_key": "k"}, "base_url"),
    ({"base_url": "http://user:pw@127.0.0.1/", "api_key": "k"}, "base_url"),
    ({"base_url": "http://gw.example.vn", "api_key": "k"}, "base_url"),  # key in clear over a network
    ({"base_url": "http://127.0.0.1", "api_key": "has space"}, "api_key"),
    ({"base_url": "http://127.0.0.1", "api_key": "k", "batch_limit": 0}, "batch_limit"),
    ({"base_url": "http://127.0.0.1", "api_key": "k", "timeout_s": 0}, "timeout_s"),
    ({"base_url": "http://127.0.0.1", "api_key": "k", "bach_limit": 5}, "bach_limit"),
])
def test_config_errors_name_the_field(config: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field) as err:
        HttpGatewayAdapter(config)
    assert "has space" not in str(err.value)  # the key itself never reaches a log


def test_plain_http_to_a_lan_gateway_needs_to_be_allowed_explicitly() -> None:
    HttpGatewayAdapter({"base_url": "http://10.20.0.5:8480", "api_key": "k", "allow_insecure_http": True})
    HttpGatewayAdapter({"base_url": "http://localhost:8480", "api_key": "k"})


def test_installed_but_unconfigured_it_stays_out_of_the_way() -> None:
    # `hub ingest` and the demo start every installed vendor with whatever config it has; a
    # gateway nobody configured must neither crash them nor poll anything.
    rt = Runtime(Settings(database_url="sqlite://"), plugins=only_this_plugin())
    try:
        adapter = rt.make_adapter("http_gateway")
    finally:
        rt.close()
    adapter.open()
    adapter.listen(object())  # type: ignore[arg-type] - nothing may be called on it
    assert adapter.wait_ready(0.1)
    results = adapter.send([outgoing("GW00001", envelope("stop"))])
    assert results[0].outcome is Outcome.FAILED and not results[0].transient
    assert results[0].reason == NOT_CONFIGURED
    assert not adapter.health().ok and "not configured" in adapter.health().detail
    adapter.close()


def test_simulator_factory_serves_where_the_config_points(api_key: str) -> None:
    port = free_port()
    config = {"base_url": f"http://127.0.0.1:{port}/gw", "api_key": api_key}
    sim = make_gateway(config, [DeviceRef("S1", "GW00001", "speaker"), DeviceRef("S2", "GW00002", "speaker")])
    sim.start()
    try:
        assert sim.url == f"http://127.0.0.1:{port}/gw"
        adapter = HttpGatewayAdapter(config)
        assert adapter.health().ok
        results = adapter.send([outgoing("GW00002", envelope("set_volume", {"level": 100}))])
        assert results[0].outcome is Outcome.ACKED
        assert sim.device("GW00002").volume == 10
    finally:
        sim.stop()


def test_simulator_factory_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="api_key"):
        make_gateway({"base_url": "http://127.0.0.1:8480"}, [])
    with pytest.raises(ValueError, match="certfile"):
        make_gateway({"base_url": "https://127.0.0.1:8443", "api_key": "k"}, [])


def test_simulator_and_protocol_do_not_need_the_hub() -> None:
    code = ("import sys; sys.modules['hub'] = None\n"  # any `import hub...` now fails
            "import hub_http_gateway.simulator, hub_http_gateway.simcli, hub_http_gateway.device\n"
            "import hub_http_gateway.protocol, hub_http_gateway.client\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
