"""Generate tests/vectors/backup.json (docs/envelope.md section 14).

Run once: ``python tests/vectors/make_backup.py > tests/vectors/backup.json``. The vectors
are never regenerated silently: ``tests/domain/test_backup.py`` checks that this script
still produces exactly the committed file, and that ``tipbox.backup`` agrees with it.

This script does not use ``tipbox``: it derives the identity's Ed25519 seed with
``hashlib.blake2b`` (the definition of ``crypto_kdf_derive_from_key``), hashes with
``hashlib.blake2b`` and signs with libsodium's ``crypto_sign`` directly, so that the
vectors check the implementation rather than repeat it. Ed25519 is deterministic and the
inputs are fixed, so the output is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any

from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

PREFIX = b"tipbox.backup.v1\x00"
TAG = b"tipbox.backup-manifest.v1"


def kdf(key: bytes, subkey_id: int, context: bytes) -> bytes:
    """``crypto_kdf_derive_from_key(32, subkey_id, context, key)``."""
    salt = struct.pack("<Q", subkey_id) + bytes(8)
    return hashlib.blake2b(
        b"", digest_size=32, key=key, salt=salt, person=context + bytes(8)
    ).digest()


def fixed(label: str, size: int) -> bytes:
    """A fixed, reproducible byte string for the vectors."""
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def signed(manifest: bytes) -> bytes:
    """``"tipbox.backup.v1" ‖ 0x00 ‖ TH("tipbox.backup-manifest.v1", manifest)``."""
    return PREFIX + hashlib.blake2b(TAG + b"\x00" + manifest, digest_size=32).digest()


def sign(secret: bytes, message: bytes) -> bytes:
    """Ed25519 detached signature (``crypto_sign`` puts it before the message)."""
    return bytes(crypto_sign(message, secret))[:64]


def manifest(ed25519: bytes, members: list[tuple[str, bytes]]) -> bytes:
    """A manifest as ``tipbox backup`` writes it: sorted keys, no spaces, one line."""
    data = {
        "format": "tipbox-backup",
        "version": 1,
        "identity": {"ed25519": ed25519.hex(), "x25519": fixed("x", 32).hex(), "fingerprint": ""},
        "created_on": "2026-01-01",
        "schema_revision": "0004",
        "tables": [{"name": "sources", "columns": ["id"], "rows": len(members) - 1}],
        "members": [
            {
                "name": name,
                "size": len(body),
                "blake2b": hashlib.blake2b(body, digest_size=32).hexdigest(),
            }
            for name, body in members
        ],
    }
    return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()


def build() -> dict[str, Any]:
    """Every vector, as the JSON document."""
    seed = fixed("identity seed", 32)
    public, secret = crypto_sign_seed_keypair(kdf(seed, 1, b"tbidnty1"))
    _other_public, other_secret = crypto_sign_seed_keypair(fixed("other instance", 32))
    cases = [
        (
            "one table, one blob",
            [("db/sources.jsonl", b"[1]\n"), ("blobs/" + "ab" * 16, fixed("blob", 64))],
        ),
        ("an empty member", [("db/sources.jsonl", b""), ("keys/identity.json", b"{}\n")]),
        (
            "a 2,048-byte blob",
            [("db/sources.jsonl", b"[1]\n[2]\n"), ("blobs/" + "cd" * 16, bytes(range(256)) * 8)],
        ),
    ]
    valid: list[dict[str, Any]] = []
    for comment, members in cases:
        body = manifest(public, members)
        valid.append(
            {
                "comment": comment,
                "manifest": body.hex(),
                "signed": signed(body).hex(),
                "signature": sign(secret, signed(body)).hex(),
                "members": [
                    {
                        "name": name,
                        "content": content.hex(),
                        "blake2b": hashlib.blake2b(content, digest_size=32).hexdigest(),
                    }
                    for name, content in members
                ],
            }
        )
    good = bytes.fromhex(valid[0]["manifest"])
    good_sig = bytes.fromhex(valid[0]["signature"])
    flipped_manifest = bytearray(good)
    flipped_manifest[40] ^= 1
    flipped_sig = bytearray(good_sig)
    flipped_sig[0] ^= 1
    invalid = [
        ("manifest modified", bytes(flipped_manifest), good_sig, "backup.signature"),
        ("signature modified", good, bytes(flipped_sig), "backup.signature"),
        ("63-byte signature", good, good_sig[:63], "backup.signature_length"),
        ("65-byte signature", good, good_sig + b"\x00", "backup.signature_length"),
        ("signed by another key", good, sign(other_secret, signed(good)), "backup.signature"),
        (
            "the manifest signed without prefix and tag",
            good,
            sign(secret, good),
            "backup.signature",
        ),
        (
            "the digest signed without prefix",
            good,
            sign(secret, signed(good)[17:]),
            "backup.signature",
        ),
    ]
    return {
        "format": "tipbox backup signatures, docs/envelope.md section 14",
        "identity_seed": seed.hex(),
        "identity_ed25519": bytes(public).hex(),
        "valid": valid,
        "invalid": [
            {"comment": c, "manifest": m.hex(), "signature": s.hex(), "check": check}
            for c, m, s, check in invalid
        ],
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
