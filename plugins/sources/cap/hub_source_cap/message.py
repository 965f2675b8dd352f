"""Reading one CAP 1.2 document: a hardened XML parse, the official OASIS schema, then plain data.

Everything here runs on bytes that came from outside, so the parser resolves no entities, loads no
DTD and opens no network connection, and a document with a DOCTYPE is refused outright: CAP has no
DTD, and a DOCTYPE is what XXE and entity-expansion attacks need. Errors name the line and the
reason, because the person reading them has to go and tell the sender what is wrong.
"""
from __future__ import annotations

import threading
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from hub.source import SourceError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SCHEMA_PATH = Path(__file__).parent / "schema" / "CAP-v1.2.xsd"
DEFAULT_MAX_BYTES = 1_000_000

# Elements that may repeat (kept as lists) and elements with children (kept as dicts), per the XSD.
_REPEATED = frozenset({"code", "info", "category", "responseType", "eventCode", "parameter", "resource", "area",
                       "polygon", "circle", "geocode"})
_NESTED = frozenset({"info", "eventCode", "parameter", "resource", "area", "geocode"})
_schema_lock = threading.Lock()  # one XMLSchema object shared by threads: validate under a lock to be safe


class CapError(SourceError):
    """A CAP document was refused; `line` is where in the document, when known."""

    def __init__(self, message: str, line: int | None = None, transient: bool = False) -> None:
        super().__init__(message, transient=transient)
        self.line = line


def hardened_parser() -> etree.XMLParser:
    """A parser for untrusted XML: no entities, no DTD, no network, no huge trees, whitespace kept
    (an enveloped signature covers the bytes as sent; stripping blanks would break it)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_blank_text=False, remove_comments=False, collect_ids=False)


def parse_xml(data: bytes, where: str, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """The root element of `data`, refused (CapError) if too big, not well-formed or carrying a DOCTYPE."""
    if not isinstance(data, bytes):
        raise CapError(f"{where}: expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise CapError(f"{where}: {len(data)} bytes is more than the {max_bytes} this source accepts (max_bytes)")
    if not data.strip():
        raise CapError(f"{where}: the document is empty", line=1)
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or None
        raise CapError(f"{where}: line {line}: not well-formed XML: {exc.msg}", line=line) from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        # lxml keeps the DOCTYPE's line only on its first child node; the prolog is near the top anyway
        raise CapError(f"{where}: line 1: a DOCTYPE is not allowed in a CAP message (entity declarations "
                       f"are how XXE attacks read files; CAP 1.2 has no DTD)", line=1)
    return root


@cache
def cap_schema() -> etree.XMLSchema:
    """The OASIS CAP 1.2 schema shipped in this package (never fetched from the network)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), hardened_parser()))


def at(where: str, line: int | None) -> str:
    """ "where: line N" when the line is known."""
    return f"{where}: line {line}" if line else where


def short(text: str) -> str:
    return text.replace("{" + CAP_NS + "}", "cap:").replace("{" + DS_NS + "}", "ds:")


def validate(root: etree._Element, where: str) -> None:
    """Refuse (CapError naming line and reason) a document the OASIS schema rejects."""
    schema = cap_schema()
    with _schema_lock:
        ok = schema.validate(root)
        errors = list(schema.error_log)
    if not ok:
        first = errors[0] if errors else None
        line = first.line if first is not None else None
        reason = short(first.message) if first is not None else "invalid"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CapError(f"{where}: line {line}: not a valid CAP 1.2 message: {reason}{more}", line=line)


def cap_time(text: str, what: str, where: str, line: int | None) -> datetime:
    """A CAP date-time (the schema already checked its shape); always timezone-aware."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CapError(f"{at(where, line)}: {what} {text!r} is not a date-time", line=line) from None
    if value.utcoffset() is None:
        raise CapError(f"{at(where, line)}: {what} {text!r} has no time zone", line=line)
    return value


def _local(el: etree._Element) -> str | None:
    if not isinstance(el.tag, str):  # comments, processing instructions
        return None
    q = etree.QName(el)
    return q.localname if q.namespace == CAP_NS else None


def summary(el: etree._Element) -> dict[str, Any]:
    """The element as JSON-storable data: repeated elements as lists, texts as strings. A resource's
    derefUri (base64 content, possibly megabytes) is kept only as its length."""
    out: dict[str, Any] = {}
    for child in el:
        name = _local(child)
        if name is None:
            continue
        if name == "derefUri":
            out["derefUri_chars"] = len(child.text or "")
            continue
        value: Any = summary(child) if name in _NESTED else (child.text or "")
        if name in _NESTED:
            value["line"] = child.sourceline
        if name in _REPEATED:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def check_times(root: etree._Element, where: str) -> None:
    """Refuse an alert whose info expires before it was sent: broadcasting it would be wrong at any time,
    and it usually means a wrong clock or time zone at the sender."""
    sent_el = root.find(f"{{{CAP_NS}}}sent")
    sent = cap_time(sent_el.text or "", "sent", where, sent_el.sourceline)
    for info in root.iterfind(f"{{{CAP_NS}}}info"):
        for name in ("effective", "onset", "expires"):
            el = info.find(f"{{{CAP_NS}}}{name}")
            if el is None:
                continue
            value = cap_time(el.text or "", name, where, el.sourceline)
            if name == "expires" and value < sent:
                raise CapError(f"{where}: line {el.sourceline}: expires {value.isoformat()} is before sent "
                               f"{sent.isoformat()}", line=el.sourceline)


def is_cap(root: etree._Element) -> bool:
    return isinstance(root.tag, str) and etree.QName(root).namespace == CAP_NS


__all__ = ["CAP_NS", "DS_NS", "CapError", "at", "cap_schema", "cap_time", "check_times", "hardened_parser", "is_cap",
           "parse_xml", "short", "summary", "validate"]
