"""A receiver checks each request with the documented helper (hub_output_events.signing.verify):
a tampered body or signature, another secret and a replayed old request are all caught."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from hub_output_events.signing import HEADER, SignatureError, sign, verify
from hub_output_events.webhook_output import WebhookOutput

from events_helpers import SECRET, Receiver, device_events, wait_for


@pytest.fixture
def captured(receivers: Callable[[], Receiver], make_webhooks: Callable[..., WebhookOutput]) -> tuple[str, bytes]:
    """(signature header, raw body) of one real request the output sent."""
    receiver = receivers()
    make_webhooks(receiver).handle(device_events(1)[0])
    request = wait_for(lambda: receiver.attempts(), what="a request")[0]
    return request["headers"][HEADER], request["body"]


def test_the_genuine_request_verifies(captured: tuple[str, bytes]) -> None:
    header, body = captured
    assert abs(verify(SECRET, header, body) - time.time()) < 30


def test_a_tampered_body_is_detected(captured: tuple[str, bytes]) -> None:
    header, body = captured
    forged = json.loads(body)
    forged["event"]["device_id"] = "spk-999"
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, header, json.dumps(forged, ensure_ascii=False, separators=(",", ":")).encode())


def test_a_tampered_signature_is_detected(captured: tuple[str, bytes]) -> None:
    header, body = captured
    t, v1 = header.split(",")
    flipped = v1[:-1] + ("0" if v1[-1] != "0" else "1")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, f"{t},{flipped}", body)


def test_a_moved_timestamp_breaks_the_signature(captured: tuple[str, bytes]) -> None:
    header, body = captured
    t, v1 = header.split(",")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, f"t={int(t[2:]) + 1},{v1}", body)


def test_another_secret_is_detected(captured: tuple[str, bytes]) -> None:
    header, body = captured
    with pytest.raises(SignatureError, match="does not match"):
        verify("another-secret-of-16-chars", header, body)


def test_a_replayed_old_request_is_refused(captured: tuple[str, bytes]) -> None:
    header, body = captured
    # the same bytes, captured and sent again ten minutes later
    with pytest.raises(SignatureError, match="outside the 300s tolerance"):
        verify(SECRET, header, body, now=time.time() + 600)
    old = sign(SECRET, body, timestamp=int(time.time()) - 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, old, body)
    assert verify(SECRET, old, body, tolerance_s=600)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=1700000000", "t=soon,v1=abc", "garbage"])
def test_a_missing_or_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, header, b"{}")


def test_a_second_signature_is_accepted_while_secrets_change() -> None:
    body = b'{"id":"x"}'
    now = int(time.time())
    old, new = sign("the-old-secret-0123456", body, now), sign(SECRET, body, now)
    assert verify(SECRET, f"{old},{new.split(',')[1]}", body) == now


def test_the_helper_imports_only_the_standard_library() -> None:
    import ast
    import sys

    import hub_output_events.signing as module

    tree = ast.parse(open(module.__file__, encoding="utf-8").read())
    roots = {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    roots |= {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert roots - {"__future__"} <= set(sys.stdlib_module_names)
