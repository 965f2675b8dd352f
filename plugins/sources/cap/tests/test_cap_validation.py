"""Refusing what is not a valid CAP 1.2 message, with the line and the reason; no XXE."""
from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from hub_source_cap.message import CAP_NS, SCHEMA_PATH, CapError
from hub_source_cap.plugin import read_alert

from cap_source_helpers import alert_xml, http_server, info_xml


def test_the_shipped_schema_is_the_oasis_cap_1_2_schema_with_its_notice() -> None:
    schema = etree.parse(str(SCHEMA_PATH))
    assert schema.getroot().get("targetNamespace") == CAP_NS
    assert "Copyright OASIS Open 2010" in SCHEMA_PATH.read_text()
    notice = (Path(SCHEMA_PATH).parent / "NOTICE").read_text()
    assert "OASIS" in notice and "may be copied and furnished to others" in notice


def test_malformed_xml_is_refused_naming_line_and_reason() -> None:
    data = alert_xml().replace(b"</headline>", b"</headlin>")
    line = next(i for i, text in enumerate(data.decode().splitlines(), 1) if "</headlin>" in text)
    with pytest.raises(CapError) as exc:
        read_alert(data, url="http://example.org/a.xml")
    assert exc.value.line == line
    assert f"http://example.org/a.xml: line {line}: not well-formed XML" in str(exc.value)
    assert "mismatch" in str(exc.value).lower()


def test_schema_invalid_message_is_refused_naming_line_and_reason() -> None:
    data = alert_xml(msg_type="Warning")
    line = next(i for i, text in enumerate(data.decode().splitlines(), 1) if "<msgType>" in text)
    with pytest.raises(CapError, match=rf"line {line}: not a valid CAP 1.2 message: Element 'cap:msgType': "
                                       r".*'Warning' is not an element of the set"):
        read_alert(data)


def test_a_missing_required_element_is_named() -> None:
    data = alert_xml(infos=[info_xml().replace("<urgency>Immediate</urgency>", "")])
    with pytest.raises(CapError, match=r"line \d+: .*cap:severity.*Expected is .*cap:urgency"):
        read_alert(data)


def test_a_document_that_is_not_cap_is_refused() -> None:
    with pytest.raises(CapError, match="line 1: the root element is note, not a CAP 1.2 alert"):
        read_alert(b"<note>hello</note>")
    old = alert_xml().replace(CAP_NS.encode(), b"urn:oasis:names:tc:emergency:cap:1.1")
    with pytest.raises(CapError, match="not a CAP 1.2 alert"):
        read_alert(old)


def test_empty_and_oversized_documents_are_refused() -> None:
    with pytest.raises(CapError, match="empty"):
        read_alert(b"  ")
    with pytest.raises(CapError, match="more than the 2000 this source accepts"):
        read_alert(alert_xml(infos=[info_xml(description="x" * 3000)]), {"max_bytes": 2000})


def test_xxe_reading_a_local_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    doctype = f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    data = alert_xml(doctype=doctype, infos=[info_xml(description="&xxe;")])
    data = data.replace(b"&amp;xxe;", b"&xxe;")  # the helper escaped it; the attack must not be escaped
    with pytest.raises(CapError, match="DOCTYPE is not allowed") as exc:
        read_alert(data)
    assert "TOP-SECRET-42" not in str(exc.value)


def test_xxe_over_the_network_makes_no_request() -> None:
    with http_server() as served:
        served.add("/evil.dtd", b'<!ENTITY x "pwned">', "application/xml-dtd")
        doctype = (f'<!DOCTYPE alert [<!ENTITY % remote SYSTEM "{served.url("/evil.dtd")}"> %remote;'
                   f'<!ENTITY xxe SYSTEM "{served.url("/leak")}">]>\n')
        data = alert_xml(doctype=doctype, infos=[info_xml(description="&xxe;")]).replace(b"&amp;xxe;", b"&xxe;")
        with pytest.raises(CapError, match="DOCTYPE|not well-formed"):
            read_alert(data)
        assert served.requests == []


def test_entity_expansion_bomb_is_refused() -> None:
    lol = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10 if i else "lol"}">' for i in range(10))
    data = alert_xml(doctype=f"<!DOCTYPE alert [{lol}]>\n", infos=[info_xml(description="&l9;")])
    # libxml2 itself stops the expansion before the DOCTYPE check: refused either way, quickly
    with pytest.raises(CapError, match="DOCTYPE|amplification"):
        read_alert(data.replace(b"&amp;l9;", b"&l9;"))


def test_malformed_references_are_refused_naming_the_line() -> None:
    with pytest.raises(CapError, match=r"line \d+: references entry 'just-an-id' is not sender,identifier,sent"):
        read_alert(alert_xml(msg_type="Update", references="just-an-id"))
