"""Enveloped XML signatures on CAP messages, checked against the certificates a source trusts.

A certificate carried inside a message (ds:KeyInfo/ds:X509Data) proves nothing by itself: anyone can
make one. A signature is accepted only when it verifies with one of the configured certificates, or
when the certificate in the message chains to a configured CA certificate. signxml is never called
without one of those two, because without them it would trust the public web CAs (certifi).
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidCertificate, InvalidInput, InvalidSignature, SignXMLException

from hub.source import SourceError

from hub_source_cap.message import CAP_NS, DS_NS, CapError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class TrustedCert:
    cert: x509.Certificate
    subject: str
    sha256: str  # hex fingerprint, for the audit record
    is_ca: bool

    @classmethod
    def of(cls, cert: x509.Certificate) -> TrustedCert:
        try:
            is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            is_ca = False
        return cls(cert, cert.subject.rfc4514_string(), cert.fingerprint(hashes.SHA256()).hex(), is_ca)


def load_trusted(entries: Sequence[str]) -> list[TrustedCert]:
    """Certificates from PEM text or PEM file paths (a file may hold several). A wrong entry is a
    configuration error naming it: silently trusting fewer certificates would refuse good alerts."""
    found: list[TrustedCert] = []
    for i, entry in enumerate(entries):
        what = f"trusted_certificates[{i}]"
        if PEM_BEGIN in entry:
            data = entry.encode()
        else:
            try:
                data = Path(entry).expanduser().read_bytes()
            except OSError as exc:
                raise SourceError(f"{what}: cannot read {entry!r}: {exc.strerror}") from None
            what = f"{what} ({entry})"
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise SourceError(f"{what}: not a PEM certificate: {exc}") from None
        found.extend(TrustedCert.of(c) for c in certs)
    return found


def _embedded_subjects(signature: etree._Element) -> list[str]:
    subjects = []
    for el in signature.iterfind(f".//{{{DS_NS}}}X509Certificate"):
        try:
            der = "".join((el.text or "").split())
            cert = x509.load_pem_x509_certificate(f"{PEM_BEGIN}\n{der}\n-----END CERTIFICATE-----\n".encode())
            subjects.append(cert.subject.rfc4514_string())
        except ValueError:
            subjects.append("<unreadable certificate>")
    return subjects


def _chain_verify(data: bytes, cas: list[TrustedCert]) -> Any:
    # signxml reads CA certificates from a file only; this one lives just for the call
    fd, path = tempfile.mkstemp(prefix="hub-cap-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            for ca in cas:
                f.write(ca.cert.public_bytes(serialization.Encoding.PEM))
        return XMLVerifier().verify(data, ca_pem_file=path)
    finally:
        os.unlink(path)


def verify(data: bytes, root: etree._Element, trusted: Sequence[TrustedCert], required: bool,
           where: str) -> tuple[etree._Element, dict[str, Any]]:
    """(the element to read, what the signature check found). The element is what the signature
    covers when the message is signed, so text outside the signed part can never be read."""
    signatures = list(root.iter(f"{{{DS_NS}}}Signature"))
    if not signatures:
        if required:
            raise CapError(f"{where}: refused: the message is not signed and this source requires a signature "
                           f"(require_signature)")
        return root, {"signed": False}
    line = signatures[0].sourceline
    if len(signatures) > 1 or signatures[0].getparent() is not root:
        raise CapError(f"{where}: line {line}: refused: expected one enveloped ds:Signature directly in the alert",
                       line=line)
    embedded = _embedded_subjects(signatures[0])
    if not trusted:
        if required:
            raise CapError(f"{where}: refused: signed, but no trusted_certificates are configured to check it")
        return root, {"signed": True, "verified": False, "embedded_certificates": embedded,
                      "why": "no trusted certificates configured; accepted as if unsigned"}
    reasons: list[str] = []
    for cert in trusted:
        try:
            result = XMLVerifier().verify(data, x509_cert=cert.cert)
        except (InvalidSignature, InvalidInput, InvalidCertificate, SignXMLException) as exc:
            reasons.append(str(exc))
            continue
        return _covered(result, where, line), {"signed": True, "verified": True, "by": cert.subject,
                                               "sha256": cert.sha256, "how": "trusted certificate"}
    cas = [c for c in trusted if c.is_ca]
    if embedded and cas:
        try:
            result = _chain_verify(data, cas)
        except (InvalidSignature, InvalidInput, InvalidCertificate, SignXMLException) as exc:
            reasons.append(f"chain to a trusted CA: {exc}")
        else:
            return _covered(result, where, line), {"signed": True, "verified": True, "by": embedded[0],
                                                   "how": "certificate chains to a trusted CA",
                                                   "cas": [c.subject for c in cas]}
    carried = (f"; the certificate carried in the message ({', '.join(embedded)}) is not one of them and does not "
               f"chain to one" if embedded else "")
    reason = reasons[-1] if reasons else "no match"
    raise CapError(f"{where}: line {line}: refused: the signature does not verify with any of the "
                   f"{len(trusted)} trusted certificates{carried} ({reason})", line=line)


def _covered(result: Any, where: str, line: int | None) -> etree._Element:
    """The signed element, refused unless it is the whole alert (a signature over a part of the
    document would let an attacker add text around it)."""
    signed = getattr(result, "signed_xml", None)
    if signed is None or not isinstance(signed.tag, str) or signed.tag != f"{{{CAP_NS}}}alert":
        raise CapError(f"{where}: line {line}: refused: the signature does not cover the whole alert", line=line)
    return signed


__all__ = ["TrustedCert", "load_trusted", "verify"]
