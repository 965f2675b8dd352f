"""Enveloped signatures: trusted accepted, untrusted refused, a certificate carried in the message
proves nothing. Certificates are made at test time."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree

from hub.source import SourceError

from hub_source_cap.message import CapError
from hub_source_cap.plugin import CapSource, read_alert

from cap_source_helpers import Identity, alert_xml, make_identity, sign


@pytest.fixture(scope="module")
def trusted() -> Identity:
    return make_identity("Trung tâm Dự báo KTTV")  # self-signed, no CA: trusted as itself


@pytest.fixture(scope="module")
def attacker() -> Identity:
    return make_identity("Trung tâm Dự báo KTTV")  # same name, different key


def required(*certs: Identity, **more: object) -> dict[str, object]:
    return {"require_signature": True, "trusted_certificates": [c.cert_pem for c in certs], **more}


def test_signed_by_a_trusted_certificate_is_accepted(trusted: Identity) -> None:
    reading = read_alert(sign(alert_xml(), trusted), required(trusted))
    assert reading.item.title == "Cảnh báo bão số 3 đổ bộ"
    sig = reading.item.raw["signature"]
    assert sig["verified"] is True and sig["how"] == "trusted certificate" and "Dự báo" in sig["by"]


def test_signed_by_an_untrusted_certificate_is_refused_where_required(trusted: Identity, attacker: Identity) -> None:
    with pytest.raises(CapError, match="refused: the signature does not verify with any of the 1 trusted"):
        read_alert(sign(alert_xml(), attacker), required(trusted))


def test_an_attacker_certificate_carried_in_the_message_proves_nothing(trusted: Identity,
                                                                         attacker: Identity) -> None:
    data = sign(alert_xml(identifier="FORGED"), attacker)
    assert attacker.cert_pem.splitlines()[1].encode() in data  # the attacker's certificate is in KeyInfo
    for config in (required(trusted), {"trusted_certificates": [trusted.cert_pem]}):
        with pytest.raises(CapError, match="the certificate carried in the message .* is not one of them"):
            read_alert(data, config)


def test_a_tampered_message_is_refused(trusted: Identity) -> None:
    data = sign(alert_xml(), trusted).replace("gió giật cấp 12".encode(), "gió nhẹ".encode())
    with pytest.raises(CapError, match="refused"):
        read_alert(data, required(trusted))


def test_unsigned_is_refused_where_required_and_accepted_otherwise(trusted: Identity) -> None:
    with pytest.raises(CapError, match="not signed and this source requires a signature"):
        read_alert(alert_xml(), required(trusted))
    assert read_alert(alert_xml(), {"trusted_certificates": [trusted.cert_pem]}).item.raw["signature"] == {
        "signed": False}


def test_one_of_several_trusted_certificates_may_sign(trusted: Identity, attacker: Identity) -> None:
    other = make_identity("Ban Chỉ huy PCTT tỉnh")
    reading = read_alert(sign(alert_xml(), other), required(trusted, other))
    assert "PCTT" in reading.item.raw["signature"]["by"]


def test_trusted_certificates_may_be_files(tmp_path: Path, trusted: Identity) -> None:
    path = tmp_path / "kttv.pem"
    path.write_text(trusted.cert_pem)
    assert read_alert(sign(alert_xml(), trusted), {"require_signature": True,
                                                   "trusted_certificates": str(path)}).item is not None
    with pytest.raises(SourceError, match=r"trusted_certificates\[0\]: cannot read"):
        read_alert(alert_xml(), {"trusted_certificates": [str(tmp_path / "missing.pem")]})


def test_a_certificate_issued_by_a_trusted_ca_is_accepted() -> None:
    ca = make_identity("Cục Viễn thông test CA", ca=True)
    leaf = make_identity("Đài KTTV khu vực", issuer=ca)
    reading = read_alert(sign(alert_xml(), leaf), required(ca))
    sig = reading.item.raw["signature"]
    assert sig["how"] == "certificate chains to a trusted CA" and "khu vực" in sig["by"]
    stranger_ca = make_identity("Other CA", ca=True)
    with pytest.raises(CapError, match="does not chain to one"):
        read_alert(sign(alert_xml(), make_identity("Đài khác", issuer=stranger_ca)), required(ca))


def test_requiring_signatures_without_trusted_certificates_is_a_configuration_error() -> None:
    with pytest.raises(SourceError, match="require_signature needs at least one entry in trusted_certificates"):
        CapSource.configured({"url": "http://127.0.0.1:1/alerts", "require_signature": True})


def test_signed_but_nothing_to_check_against_is_accepted_as_unsigned_when_not_required(trusted: Identity) -> None:
    sig = read_alert(sign(alert_xml(), trusted)).item.raw["signature"]
    assert sig["signed"] is True and sig["verified"] is False


def test_whitespace_is_part_of_what_is_signed(trusted: Identity) -> None:
    signed = sign(alert_xml(), trusted)
    assert b"\n  <identifier>" in signed  # the indentation the sender wrote is still there, and verifies
    assert read_alert(signed, required(trusted)).item is not None
    # what capvalidator does before verifying (strip the blanks between elements) breaks a correct signature
    stripped = etree.tostring(etree.fromstring(signed, etree.XMLParser(remove_blank_text=True)))
    with pytest.raises(CapError, match="refused"):
        read_alert(stripped, required(trusted))


def test_a_second_signature_is_refused(trusted: Identity) -> None:
    root = etree.fromstring(sign(alert_xml(), trusted))
    root.append(copy.deepcopy(root[-1]))
    with pytest.raises(CapError, match="expected one enveloped ds:Signature"):
        read_alert(etree.tostring(root), required(trusted))
