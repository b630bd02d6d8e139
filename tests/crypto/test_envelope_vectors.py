"""Known-answer vectors for the envelope and Padmé: tests/vectors/envelope.json, padme.json.

The implementation must agree with every case; the files were made once by
tests/vectors/make_envelope.py and are never regenerated silently.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import nacl.signing
import pytest

from tipbox.crypto import envelope as env
from tipbox.crypto.envelope import Kind, Meta
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import blake2b_256

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
Case = dict[str, Any]

# The check named by each invalid case, and the message this implementation gives for it.
CHECKS = {
    "body.too_short": "body: blob too short",
    "body.authenticate": "body: chunk fails to authenticate",
    "body.tag_final": "body: stream ends without TAG_FINAL",
    "body.tag": "body: chunk tag not allowed",
    "body.trailing": "body: bytes after TAG_FINAL",
    "body.padding": "body: non-zero padding",
    "body.padded_length": "body: padded length does not match the meta",
    "meta.length": "meta: wrong length",
    "meta.authenticate": "meta: fails to authenticate",
    "meta.padding": "meta: bad padding",
    "meta.overrun": "meta: lengths overrun the record",
    "meta.trailing": "meta: bytes after the type",
    "meta.name_utf8": "meta: name is not valid UTF-8",
    "meta.type_ascii": "meta: media type is not printable ASCII",
    "meta.size": "meta: size out of range",
    "wrap.length": "wrap: wrong length",
    "wrap.open": "wrap: does not open",
    "signature.length": "signature: wrong length",
    "signature.verify": "signature: does not verify",
}


@cache
def load(name: str) -> Case:
    data: Case = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def envelope_cases(section: str) -> list[Case]:
    cases: list[Case] = load("envelope.json")[section]
    return cases


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def test_files_are_small() -> None:
    size = (VECTORS / "envelope.json").stat().st_size + (VECTORS / "padme.json").stat().st_size
    assert size < 300_000


def test_every_check_has_a_case() -> None:
    named = {case["check"] for case in envelope_cases("invalid")}
    assert named == set(CHECKS)


def test_valid_cases_cover_every_kind() -> None:
    assert {case["kind"] for case in envelope_cases("valid")} >= {1, 2, 3}
    assert any(case["padded_length"] > 65536 for case in envelope_cases("valid"))


@pytest.mark.parametrize("case", envelope_cases("valid"), ids=lambda c: c["name"])
def test_valid(case: Case) -> None:
    key = h(case["content_key"])
    kind = Kind(case["kind"])
    ad = env.additional_data(kind, h(case["source_id"]), h(case["item_id"]))
    assert ad.hex() == case["ad"]
    assert env.content_subkeys(key) == (h(case["body_key"]), h(case["meta_key"]))

    # Meta: reproducible from the nonce, and opens to the same fields.
    meta = Meta(**case["meta"])
    sealed_meta = h(case["sealed_meta"])
    assert env.seal_meta(key, ad, meta, h(case["meta_nonce"])) == sealed_meta
    assert env.open_meta(key, ad, sealed_meta) == meta

    # Body: a reader vector.
    blob = h(case["blob"])
    assert env.padded_length(meta.size) == case["padded_length"]
    assert len(blob) == env.blob_length(meta.size)
    reader = env.decrypt_body(key, ad, io.BytesIO(blob), meta.size, digest=True)
    plaintext = b"".join(reader)
    assert reader.digest.hex() == case["blob_digest"] == blake2b_256(blob).hex()
    assert blake2b_256(plaintext).hex() == case["plaintext_blake2b"]
    if "plaintext" in case:
        assert plaintext.hex() == case["plaintext"]
    else:
        assert case["plaintext_rule"] == "65537 bytes; byte i is i mod 256"
        assert plaintext == (bytes(range(256)) * 257)[:65537]

    # Wraps: each opens to K.
    for wrap in case["wraps"]:
        secret = h(wrap["recipient_secret"])
        assert sodium.crypto_scalarmult_base(secret).hex() == wrap["recipient_public"]
        assert env.unwrap_key(h(wrap["wrap"]), secret) == key

    # Signatures: deterministic, so the signer's seed reproduces them.
    signed = kind in (Kind.REPLY, Kind.NOTE)
    assert ("signature" in case) == signed
    if signed:
        signer = nacl.signing.SigningKey(h(case["signer_seed"]))
        assert bytes(signer.verify_key).hex() == case["signer_public"]
        digest = h(case["blob_digest"])
        message = env.signature_message(ad, sealed_meta, digest)
        assert message.hex() == case["signature_message"]
        signature = env.sign_item(h(case["signer_seed"]), ad, sealed_meta, digest)
        assert signature.hex() == case["signature"]
        env.verify_item(h(case["signer_public"]), ad, sealed_meta, digest, signature)

    # And the whole item through the in-memory API, opened by every recipient.
    item = env.SealedItem(
        kind,
        h(case["source_id"]),
        h(case["item_id"]),
        sealed_meta,
        blob,
        {bytes([i]) * 16: h(w["wrap"]) for i, w in enumerate(case["wraps"])},
        h(case["signature"]) if signed else None,
    )
    for i, wrap in enumerate(case["wraps"]):
        opened = env.open_item(
            item,
            bytes([i]) * 16,
            h(wrap["recipient_secret"]),
            signer_public=h(case["signer_public"]) if signed else None,
        )
        assert opened == env.OpenedItem(meta, plaintext)


def run_reader(case: Case) -> None:
    part = case["part"]
    if part == "body":
        reader = env.decrypt_body(
            h(case["content_key"]), h(case["ad"]), io.BytesIO(h(case["blob"])), case["plain_length"]
        )
        for _ in reader:
            pass
    elif part == "meta":
        env.open_meta(h(case["content_key"]), h(case["ad"]), h(case["sealed_meta"]))
    elif part == "wrap":
        env.unwrap_key(h(case["wrap"]), h(case["recipient_secret"]))
    elif part == "signature":
        env.verify_item(
            h(case["signer_public"]),
            h(case["ad"]),
            h(case["sealed_meta"]),
            h(case["blob_digest"]),
            h(case["signature"]),
        )
    else:
        pytest.fail(f"unknown part {part!r}")


@pytest.mark.parametrize(
    "case", envelope_cases("invalid"), ids=lambda c: f"{c['part']}: {c['name']}"
)
def test_invalid(case: Case) -> None:
    with pytest.raises(Rejected) as caught:
        run_reader(case)
    assert str(caught.value) == CHECKS[case["check"]]


@pytest.mark.parametrize("case", load("padme.json")["valid"], ids=lambda c: str(c["length"]))
def test_padme(case: Case) -> None:
    assert env.padded_length(case["length"]) == case["padded_length"]
    assert env.blob_length(case["length"]) == case["blob_length"]
    assert env.padded_length_of_blob(case["blob_length"]) == case["padded_length"]


@pytest.mark.parametrize("size", load("padme.json")["invalid_blob_lengths"])
def test_padme_invalid_blob_lengths(size: int) -> None:
    with pytest.raises(Rejected, match="not a valid bucket"):
        env.padded_length_of_blob(size)


def test_padme_covers_boundaries() -> None:
    lengths = {case["length"] for case in load("padme.json")["valid"]}
    required = {0, 1, 4095, 4096, 4097, 65535, 65536, 65537, 10 * 2**20, 2**53 - 1}
    assert required <= lengths
