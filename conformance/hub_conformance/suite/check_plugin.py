"""The plugin as installed: manifest, parsing of bad payloads, credential and TLS settings.
These need no running hub or device."""
from __future__ import annotations

import pytest

from hub.fleet.registry import default_capabilities
from hub.schemas.manifest import ManifestSchema
from hub.vendor import StatusParseError
from hub.vendor_traits import traits_of

from hub_conformance import security
from hub_conformance.suite.common import SKIP, expect, requirement

pytestmark = pytest.mark.static

# Empty, not UTF-8, truncated: what a dropped 3G frame or a firmware bug produces.
GARBAGE = (b"", b"\xff\xfe\x00\x01\x80", b'{"truncated": ')


@requirement("PLUG-01")
def check_manifest_follows_the_contract(cert) -> None:  # noqa: ANN001 - fixtures
    s = cert.subject
    m = s.manifest
    expect(s.entry_point is not None and s.entry_point.group == "hub.vendors",
           "the adapter was not found through a hub.vendors entry point")
    errors = ManifestSchema().validate(m.to_dict())
    expect(not errors, f"the manifest breaks hub/schemas/manifest.py: {errors}")
    expect(m.device_kinds, "the manifest names no device kind")
    expect(m.capabilities, "the manifest declares no capability")
    expect(isinstance(m.version, str) and m.version.strip(), "the manifest has no version")
    # The manifest's version need not be the distribution's (one distribution may carry several
    # versioned profiles); the report shows both.
    for kind in m.device_kinds:
        expect(default_capabilities(s.plugins, s.vendor, kind),
               f"no declared capability applies to {kind} devices (hub/fleet/registry.py narrows by kind)")
    try:
        s.adapter_cls(cert.effective_config())
    except Exception as exc:  # noqa: BLE001 - the finding is that it refuses
        raise AssertionError(f"the adapter refuses the certified configuration: {type(exc).__name__}: {exc}") from None


@requirement("PARSE-01")
def check_malformed_payloads_are_refused(cert) -> None:  # noqa: ANN001
    adapter = cert.subject.adapter_cls(cert.effective_config())
    address = cert.target.devices[0].address if cert.target.devices else "conformance"
    # A plugin whose devices give no acknowledgement (traits.confirmation "readback") has no parse_ack.
    readback = traits_of(cert.subject.manifest).confirmation == "readback"
    for method in ("parse_status",) if readback else ("parse_status", "parse_ack"):
        for payload in GARBAGE:
            try:
                got = getattr(adapter, method)(address, payload)
            except StatusParseError:
                continue
            except NotImplementedError:
                raise AssertionError(f"{method} is not implemented: it must turn a payload into the hub's form "
                                     "or raise StatusParseError") from None
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"{method}({payload!r}) raised {type(exc).__name__}: {exc} "
                                     "instead of StatusParseError") from None
            raise AssertionError(f"{method}({payload!r}) accepted a malformed payload and returned {got!r}")


@requirement("SEC-CRED-01")
def check_no_default_credentials(cert) -> None:  # noqa: ANN001
    schema = cert.subject.manifest.config_schema
    if schema is None:
        return  # no schema, so no credential setting that could carry a default
    shipped = security.default_credentials(schema)
    expect(not shipped, "credential settings ship with a default value: "
           + ", ".join(f"{k}" for k in sorted(shipped)) + " (every deployment must supply its own)")


@requirement("SEC-TLS-01")
def check_control_channel_is_encrypted(cert) -> None:  # noqa: ANN001
    encrypted, why = security.channel_encryption(cert.effective_config(), cert.subject.manifest.config_schema)
    if encrypted is None:
        raise RuntimeError(f"cannot tell whether the channel is encrypted ({why}); name the switch `tls` or use "
                           "an https/mqtts URL setting")
    if encrypted:
        return
    if cert.simulator:
        pytest.skip(f"{SKIP}this simulator run uses a plain channel ({why}); certify a target configured for TLS")
    raise AssertionError(f"the certified configuration sends commands unencrypted ({why})")


@requirement("SEC-TLS-02")
def check_certificates_are_verified(cert) -> None:  # noqa: ANN001
    problems = security.verification_problems(cert.effective_config(), cert.subject.manifest.config_schema)
    expect(not problems, "certificate verification is disabled: " + "; ".join(problems))
