"""https to the gateway: verified against a CA file, refused when unverifiable, or unverified
when the operator says so."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.vendor import Outcome

from hub_http_gateway.adapter import HttpGatewayAdapter
from hub_http_gateway.simulator import GatewaySim
from http_gateway_helpers import envelope, outgoing, self_signed_cert

MakeSim = Callable[..., GatewaySim]
MakeAdapter = Callable[..., HttpGatewayAdapter]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pair = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if pair is None:
        pytest.skip("no openssl command to make a test certificate")
    return pair


@pytest.fixture
def https_sim(make_sim: MakeSim, cert: tuple[Path, Path]) -> GatewaySim:
    return make_sim(["GW1"], certfile=str(cert[0]), keyfile=str(cert[1]))


def test_https_verified_with_a_ca_file(https_sim: GatewaySim, make_adapter: MakeAdapter,
                                       cert: tuple[Path, Path]) -> None:
    assert https_sim.url.startswith("https://127.0.0.1:")
    adapter = make_adapter(https_sim, ca_file=str(cert[0]))
    result = adapter.send([outgoing("GW1", envelope("set_volume", {"level": 30}))])[0]
    assert result.outcome is Outcome.ACKED
    assert https_sim.device("GW1").volume == 4
    assert adapter.health().ok


def test_an_unverifiable_certificate_fails_for_good(https_sim: GatewaySim, make_adapter: MakeAdapter) -> None:
    result = make_adapter(https_sim).send([outgoing("GW1", envelope("stop"))])[0]
    assert result.outcome is Outcome.FAILED and not result.transient
    assert "TLS verification of the gateway failed" in result.reason
    assert https_sim.batch_requests() == []


def test_verification_can_be_switched_off(https_sim: GatewaySim, make_adapter: MakeAdapter) -> None:
    result = make_adapter(https_sim, verify_tls=False).send([outgoing("GW1", envelope("stop"))])[0]
    assert result.outcome is Outcome.ACKED


def test_a_missing_ca_file_is_a_config_error(https_sim: GatewaySim, make_adapter: MakeAdapter,
                                             tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ca_file"):
        make_adapter(https_sim, ca_file=str(tmp_path / "nope.pem"))
