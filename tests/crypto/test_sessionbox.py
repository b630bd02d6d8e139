"""Session format (docs/envelope.md 9): known-answer vectors and the reader's rejections."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tipbox.crypto import sessionbox
from tipbox.crypto.errors import Rejected

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CASES: dict[str, Any] = json.loads((VECTORS / "sessions.json").read_text(encoding="utf-8"))
VALID: list[dict[str, Any]] = CASES["valid"]
INVALID: list[dict[str, Any]] = CASES["invalid"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sessions", VECTORS / "make_sessions.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_are_what_the_generator_makes() -> None:
    text = (VECTORS / "sessions.json").read_text(encoding="utf-8")
    assert _generator().render() == text


@pytest.mark.parametrize("case", VALID, ids=[c["comment"] for c in VALID])
def test_valid(case: dict[str, Any]) -> None:
    secret = bytes.fromhex(case["secret"])
    app: str = case["app"]
    assert sessionbox.encode_cookie(secret) == case["cookie"]
    assert sessionbox.decode_cookie(case["cookie"]) == secret
    assert sessionbox.row_id(secret).hex() == case["row_id"]
    assert sessionbox.row_id_hex(secret) == case["row_id"]
    assert sessionbox.box_key(secret).hex() == case["box_key"]
    assert sessionbox.additional_data(app, sessionbox.row_id(secret)).hex() == case["ad"]
    key = None if case["key"] is None else bytes.fromhex(case["key"])
    payload = sessionbox.Payload(user=case["user"], role=case["role"], key=key, data=case["data"])
    raw = sessionbox.encode_payload(payload)
    assert raw.hex() == case["payload"]
    box = sessionbox.seal(secret, app, raw, nonce=bytes.fromhex(case["nonce"]))
    assert box.hex() == case["box"]
    opened = sessionbox.open_box(secret, app, bytes.fromhex(case["box"]))
    assert opened == raw
    assert sessionbox.decode_payload(opened) == payload


@pytest.mark.parametrize("case", INVALID, ids=[c["comment"] for c in INVALID])
def test_invalid(case: dict[str, Any]) -> None:
    if "cookie" in case:
        with pytest.raises(Rejected) as caught:
            sessionbox.decode_cookie(case["cookie"])
    elif "box" in case:
        secret, box = bytes.fromhex(case["secret"]), bytes.fromhex(case["box"])
        with pytest.raises(Rejected) as caught:
            sessionbox.open_box(secret, case["app"], box)
    else:
        payload = bytes.fromhex(case["payload"])
        with pytest.raises(Rejected) as caught:
            sessionbox.decode_payload(payload)
    assert str(caught.value).startswith(case["check"] + ": ")


def test_round_trip_with_fresh_secrets() -> None:
    for _ in range(20):
        secret = sessionbox.new_secret()
        cookie = sessionbox.encode_cookie(secret)
        assert len(cookie) == 43
        assert sessionbox.decode_cookie(cookie) == secret
        box = sessionbox.seal(secret, "source", b"payload")
        assert sessionbox.open_box(secret, "source", box) == b"payload"
        # A fresh nonce every time.
        assert sessionbox.seal(secret, "source", b"payload") != box


def test_secrets_are_random() -> None:
    assert len({sessionbox.new_secret() for _ in range(100)}) == 100


def test_the_row_id_and_the_box_key_are_unrelated() -> None:
    secret = sessionbox.new_secret()
    row_id, key = sessionbox.row_id(secret), sessionbox.box_key(secret)
    assert len(row_id) == 16
    assert len(key) == 32
    assert row_id not in key
    assert secret not in key


def test_payload_repr_hides_the_key() -> None:
    seed = bytes(range(32))
    payload = sessionbox.Payload(user=1, role="admin", key=seed, data={})
    assert seed.hex() not in repr(payload)
    assert repr(seed) not in repr(payload)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sessionbox.encode_cookie(bytes(31)), "session.secret"),
        (lambda: sessionbox.row_id(bytes(33)), "session.secret"),
        (lambda: sessionbox.additional_data("admin", bytes(16)), "session.app"),
        (
            lambda: sessionbox.seal(bytes(32), "source", b"", nonce=bytes(12)),
            "session.nonce",
        ),
        (
            lambda: sessionbox.encode_payload(
                sessionbox.Payload(user=True, role="x", key=None, data={})
            ),
            "session.payload_user",
        ),
        (
            lambda: sessionbox.encode_payload(
                sessionbox.Payload(user=1, role="x", key=bytes(16), data={})
            ),
            "session.payload_key",
        ),
        (
            lambda: sessionbox.encode_payload(
                sessionbox.Payload(user=1, role="x", key=None, data={"b": b"bytes"})
            ),
            "session.payload_data",
        ),
    ],
)
def test_writer_refuses(call: Any, message: str) -> None:
    with pytest.raises(Rejected) as caught:
        call()
    assert str(caught.value).startswith(message + ": ")
