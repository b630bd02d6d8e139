"""Derivations and tagged hashes (envelope.md sections 1 and 2)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import ALL_CONTEXTS, blake2b_256, derive, tagged_hash

REFERENCE_KEY = bytes(range(32))


def test_libsodium_reference_value() -> None:
    # libsodium's own test (test/default/kdf.c): key 0..31, context "KDF test".
    assert (
        derive(REFERENCE_KEY, 1, b"KDF test").hex()
        == "13fea52bb8cba063f3ed93de27ed07e06d8c6367474e6ae4c9282913ac3c3a03"
    )


@given(
    key=st.binary(min_size=32, max_size=32),
    subkey_id=st.integers(0, 2**64 - 1),
    length=st.integers(16, 64),
    context=st.sampled_from(ALL_CONTEXTS),
)
def test_derive_is_blake2b_keyed_salted_personalised(
    key: bytes, subkey_id: int, length: int, context: bytes
) -> None:
    # hashlib's BLAKE2b is an independent implementation of the same construction.
    expected = hashlib.blake2b(
        b"",
        digest_size=length,
        key=key,
        salt=subkey_id.to_bytes(8, "little") + bytes(8),
        person=context + bytes(8),
    ).digest()
    assert derive(key, subkey_id, context, length) == expected


def test_contexts_are_distinct_eight_byte_ascii() -> None:
    assert len(set(ALL_CONTEXTS)) == len(ALL_CONTEXTS) == 10
    for context in ALL_CONTEXTS:
        assert len(context) == 8
        assert context.isascii()


def test_ids_and_contexts_separate_outputs() -> None:
    outputs = {derive(REFERENCE_KEY, i, c) for c in ALL_CONTEXTS for i in (1, 2, 3)}
    assert len(outputs) == 3 * len(ALL_CONTEXTS)


@pytest.mark.parametrize(
    ("key", "subkey_id", "context", "length"),
    [
        (bytes(31), 1, b"tbcontn1", 32),
        (bytes(33), 1, b"tbcontn1", 32),
        (bytes(32), 1, b"tbcontn", 32),
        (bytes(32), 1, b"tbcontn12", 32),
        (bytes(32), 1, b"tbcontn1", 15),
        (bytes(32), 1, b"tbcontn1", 65),
        (bytes(32), -1, b"tbcontn1", 32),
        (bytes(32), 2**64, b"tbcontn1", 32),
    ],
)
def test_derive_rejects_bad_parameters(
    key: bytes, subkey_id: int, context: bytes, length: int
) -> None:
    with pytest.raises(Rejected):
        derive(key, subkey_id, context, length)


def test_tagged_hash_is_plain_blake2b_of_tag_zero_data() -> None:
    assert tagged_hash(b"tag", b"data") == hashlib.blake2b(b"tag\x00data", digest_size=32).digest()
    assert blake2b_256(b"") == hashlib.blake2b(b"", digest_size=32).digest()
    # The separator keeps tag and data apart.
    assert tagged_hash(b"ab", b"c") != tagged_hash(b"a", b"bc")
