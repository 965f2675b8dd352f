"""Shared by the CAP source tests: CAP messages to order, certificates made at test time, signing,
and a loopback HTTP server that serves documents and counts requests."""
from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner, methods

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
OASIS = "/work/shared/data/cap"


def area_xml(desc: str = "Xã Phú Thượng", polygons: Iterable[str] = (), circles: Iterable[str] = (),
             geocodes: Iterable[tuple[str, str]] = (("ADMIN_CODE", "00097"),)) -> str:
    parts = [f"<areaDesc>{escape(desc)}</areaDesc>"]
    parts += [f"<polygon>{p}</polygon>" for p in polygons]
    parts += [f"<circle>{c}</circle>" for c in circles]
    parts += [f"<geocode><valueName>{n}</valueName><value>{v}</value></geocode>" for n, v in geocodes]
    return f"<area>{''.join(parts)}</area>"


def info_xml(language: str | None = "vi-VN", event: str = "Bão số 3", urgency: str = "Immediate",
             severity: str = "Extreme", certainty: str = "Observed", expires: str | None = None,
             headline: str | None = "Cảnh báo bão số 3 đổ bộ",
             description: str = "Bão số 3 đang tiến vào đất liền, gió giật cấp 12.",
             instruction: str = "Người dân ở trong nhà, tránh xa bờ biển.", areas: Iterable[str] | None = None,
             category: str = "Met") -> str:
    parts = [f"<language>{language}</language>" if language else "", f"<category>{category}</category>",
             f"<event>{escape(event)}</event>", f"<urgency>{urgency}</urgency>", f"<severity>{severity}</severity>",
             f"<certainty>{certainty}</certainty>", f"<expires>{expires}</expires>" if expires else "",
             f"<headline>{escape(headline)}</headline>" if headline else "",
             f"<description>{escape(description)}</description>" if description else "",
             f"<instruction>{escape(instruction)}</instruction>" if instruction else "",
             *(areas if areas is not None else [area_xml()])]
    return f"<info>{''.join(parts)}</info>"


def alert_xml(identifier: str = "VN-KTTV-2026-001", sender: str = "canhbao@kttv.gov.vn",
              sent: str = "2026-12-05T08:00:00+07:00", status: str = "Actual", msg_type: str = "Alert",
              scope: str = "Public", references: str | None = None, note: str | None = None,
              infos: Iterable[str] | None = None, doctype: str = "") -> bytes:
    parts = [f"<identifier>{identifier}</identifier>", f"<sender>{sender}</sender>", f"<sent>{sent}</sent>",
             f"<status>{status}</status>", f"<msgType>{msg_type}</msgType>", f"<scope>{scope}</scope>",
             f"<note>{escape(note)}</note>" if note else "",
             f"<references>{references}</references>" if references else "",
             *(infos if infos is not None else [info_xml()])]
    body = "\n  ".join(p for p in parts if p)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}<alert xmlns="{CAP_NS}">\n  {body}\n</alert>\n'
            ).encode()


@dataclass
class Identity:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def make_identity(common_name: str, issuer: Identity | None = None, ca: bool = False) -> Identity:
    """A key and certificate: self-signed unless `issuer` is given; `ca` makes a CA certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hub tests")])
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
               .not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=ca, crl_sign=ca, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if not ca:  # the web PKI profile cryptography verifies chains with wants a subject alternative name
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name("alerts@example.org")]),
                                        critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Identity(key, cert)


def sign(document: bytes, signer: Identity, chain: Iterable[Identity] = ()) -> bytes:
    """An enveloped signature over the whole alert, the signer's certificate (and `chain`) in KeyInfo.
    Serialised as is: pretty-printing or stripping whitespace now would break the signature."""
    root = etree.fromstring(document)
    certs = [signer.cert_pem, *(c.cert_pem for c in chain)]
    signed = XMLSigner(method=methods.enveloped, signature_algorithm="rsa-sha256",
                       digest_algorithm="sha256").sign(root, key=signer.key_pem, cert=certs)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


@dataclass
class Served:
    """What the loopback server answers: path → (status, content type, body); requests seen."""

    routes: dict[str, tuple[int, str, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes, content_type: str = "application/cap+xml", status: int = 200) -> str:
        self.routes[path] = (status, content_type, body)
        return self.url(path)


@contextmanager
def http_server() -> Iterator[Served]:
    """A server on a free loopback port (port 0: the system picks), stopped on exit."""
    served = Served()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            served.requests.append(self.path)
            if served.delay_s:
                threading.Event().wait(served.delay_s)
            status, ctype, body = served.routes.get(self.path, (404, "text/plain", b"not found"))
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def atom_index(entries: Iterable[tuple[str, str]], title: str = "Cảnh báo") -> bytes:
    """An Atom feed whose entries link to CAP documents: (href, updated)."""
    items = "".join(f'<entry><id>{escape(h)}</id><title>alert</title><updated>{u}</updated>'
                    f'<link rel="alternate" type="application/cap+xml" href="{escape(h)}"/></entry>'
                    for h, u in entries)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f'<title>{title}</title><id>urn:test</id><updated>2026-12-05T08:00:00+07:00</updated>'
            f'{items}</feed>').encode()


def rss_index(links: Iterable[str]) -> bytes:
    items = "".join(f"<item><title>alert</title><link>{escape(h)}</link></item>" for h in links)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
