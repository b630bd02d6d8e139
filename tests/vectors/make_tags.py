"""Generate tests/vectors/tags.json (docs/envelope.md section 12).

Run once: ``python tests/vectors/make_tags.py > tests/vectors/tags.json``. The vectors are
never regenerated silently: ``tests/crypto/test_tags.py`` checks that this script still
produces exactly the committed file, and that ``tipbox.crypto.tags`` agrees with it.

This script does not use ``tipbox.crypto``: it derives with ``hashlib.blake2b`` (the
definition of ``crypto_kdf_derive_from_key``), pads by hand as ``sodium_pad`` does, and
seals with libsodium's AEAD directly, so that the vectors check the implementation rather
than repeat it. Seeds, ids and nonces are fixed, so the output is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import unicodedata
from typing import Any

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt, crypto_scalarmult_base

CONTEXT = b"tbmetad1"
BLOCK = 256


def kdf(key: bytes, subkey_id: int) -> bytes:
    """``crypto_kdf_derive_from_key(32, subkey_id, "tbmetad1", key)``."""
    salt = struct.pack("<Q", subkey_id) + bytes(8)
    return hashlib.blake2b(
        b"", digest_size=32, key=key, salt=salt, person=CONTEXT + bytes(8)
    ).digest()


def fixed(label: str, size: int) -> bytes:
    """A fixed, reproducible byte string for the vectors."""
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def key_id(x25519: bytes) -> bytes:
    """Section 3: the first 16 bytes of TH("tipbox.key-fingerprint.v1", pubkeys(6))."""
    pubkeys = bytes([6]) + x25519 + bytes(32)
    return hashlib.blake2b(b"tipbox.key-fingerprint.v1\x00" + pubkeys, digest_size=32).digest()[:16]


def pad(record: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to 256 bytes, as ``sodium_pad`` does."""
    return record + b"\x80" + bytes(BLOCK - len(record) - 1)


def display(text: str) -> str:
    """NFKC, white-space runs made one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def ad(kid: bytes, source_id: bytes) -> bytes:
    """``"tipbox.tag.v1" ‖ 0x00 ‖ key_id ‖ source_id``."""
    return b"tipbox.tag.v1\x00" + kid + source_id


def seal_padded(tag_key: bytes, kid: bytes, source_id: bytes, padded: bytes, nonce: bytes) -> bytes:
    """``nonce ‖ AEAD(tag_key, nonce, padded, AD)``."""
    return nonce + bytes(
        crypto_aead_xchacha20poly1305_ietf_encrypt(padded, ad(kid, source_id), nonce, tag_key)
    )


def index(index_key: bytes, shown: str) -> bytes:
    """Keyed BLAKE2b-256 of ``"tipbox.tag-index.v1" ‖ 0x00 ‖ casefold(display)``."""
    message = b"tipbox.tag-index.v1\x00" + shown.casefold().encode()
    return hashlib.blake2b(message, digest_size=32, key=index_key).digest()


def build() -> dict[str, Any]:
    """Every vector, as the JSON document."""
    seed = fixed("metadata seed", 32)
    x_secret = kdf(seed, 1)
    x_public = crypto_scalarmult_base(x_secret)
    kid = key_id(x_public)
    tag_key, index_key = kdf(seed, 2), kdf(seed, 3)
    source_id = fixed("source id", 16)
    other_source = fixed("other source id", 16)
    texts = [
        ("plain ASCII", "ministry", "ministry"),
        ("case folds into the same index", "MINISTRY", "MINISTRY"),
        ("white space collapsed and trimmed", "  needs \t lawyer  ", "needs lawyer"),
        ("NFKC: full-width letters and a ligature", "\uff46\uff49le \ufb01", "file fi"),
        ("Cyrillic (Kazakh)", "Министрлік", "Министрлік"),
        ("German sharp s folds to ss", "Straße", "Straße"),
        ("48 characters, four bytes each", "😀" * 48, "😀" * 48),
    ]
    valid = []
    for number, (comment, given, shown) in enumerate(texts):
        assert display(given) == shown
        nonce = fixed(f"tag nonce {number}", 24)
        raw = shown.encode()
        padded = pad(bytes([len(raw)]) + raw)
        valid.append(
            {
                "comment": comment,
                "text": given,
                "display": shown,
                "index": index(index_key, shown).hex(),
                "source_id": source_id.hex(),
                "nonce": nonce.hex(),
                "sealed": seal_padded(tag_key, kid, source_id, padded, nonce).hex(),
            }
        )
    nonce = fixed("tag nonce bad", 24)
    good = bytes.fromhex(valid[0]["sealed"])
    flipped = bytearray(good)
    flipped[-1] ^= 1

    def sealed(record: bytes, padded: bytes | None = None) -> str:
        body = pad(record) if padded is None else padded
        return seal_padded(tag_key, kid, source_id, body, nonce).hex()

    other_key = kdf(fixed("other seed", 32), 2)
    invalid = [
        ("295 bytes", good[:-1].hex(), "tag.length"),
        ("MAC modified", bytes(flipped).hex(), "tag.authenticate"),
        (
            "sealed for another source",
            seal_padded(tag_key, kid, other_source, pad(b"\x03abc"), nonce).hex(),
            "tag.authenticate",
        ),
        (
            "sealed under another key",
            seal_padded(other_key, kid, source_id, pad(b"\x03abc"), nonce).hex(),
            "tag.authenticate",
        ),
        ("no padding marker", sealed(b"", bytes(BLOCK)), "tag.padding"),
        ("length byte too large", sealed(b"\x05abc"), "tag.overrun"),
        ("length byte too small", sealed(b"\x02abc"), "tag.overrun"),
        ("empty record", sealed(b""), "tag.overrun"),
        ("not UTF-8", sealed(b"\x02\xc3\x28"), "tag.utf8"),
        ("empty text", sealed(b"\x00"), "tag.text"),
        ("leading space", sealed(b"\x04 abc"), "tag.text"),
        ("not NFKC", sealed(b"\x03" + "ﬁx".encode()[:3]), "tag.text"),
        ("right-to-left override", sealed(bytes([6]) + "ab\u202ec".encode()), "tag.text"),
        ("49 characters", sealed(bytes([49]) + b"a" * 49), "tag.text"),
    ]
    return {
        "format": "tipbox tags, docs/envelope.md section 12",
        "metadata_seed": seed.hex(),
        "x25519_public": x_public.hex(),
        "key_id": kid.hex(),
        "tag_key": tag_key.hex(),
        "index_key": index_key.hex(),
        "valid": valid,
        "invalid": [
            {"comment": comment, "source_id": source_id.hex(), "sealed": value, "check": check}
            for comment, value, check in invalid
        ],
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
