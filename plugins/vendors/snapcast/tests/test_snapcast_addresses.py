"""What the hub refuses for Snapcast (security finding 1): a device address is the snapserver
client id, never a place to connect; the control connection goes only to a host:control_port the
province allows, never to one of the hub's own services, checked before every connect."""
from __future__ import annotations

import pytest

from hub.addresses import AddressError, check_address
from hub.testing import loopback_address_policy
from hub.vendor import TransientError

from hub_snapcast.adapter import SnapcastAdapter
from snapcast_helpers import envelope, outgoing


@pytest.mark.parametrize("address, rule", [("snap-1\r\n", "characters"), ("", "empty"), ("x" * 200, "length")])
def test_refused_client_ids(address: str, rule: str) -> None:
    with pytest.raises(AddressError) as err:
        check_address(SnapcastAdapter.manifest.address, address, loopback_address_policy())
    assert err.value.rule == rule


@pytest.mark.parametrize("host, port, refused", [
    ("127.0.0.1", 6379, "hub's own Redis"),
    ("localhost", 1883, "hub's own MQTT broker"),
    ("10.0.0.9", 1705, "not in device_networks"),
])
def test_a_snapserver_outside_the_policy_is_never_connected(host: str, port: int, refused: str) -> None:
    adapter = SnapcastAdapter({"host": host, "control_port": port, "timeout_s": 0.5})
    try:
        adapter.open()  # logs and leaves it to send() and the listener, as for a server that is down
        with pytest.raises(TransientError, match=refused):
            adapter.send([outgoing("snap-1", envelope("stop"))])
        assert adapter.health().ok is False and refused in adapter.health().detail
    finally:
        adapter.close()
