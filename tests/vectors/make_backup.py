"""Generate tests/vectors/backup.json (docs/envelope.md section 14).

Run once: ``python tests/vectors/make_backup.py > tests/vectors/backup.json``. The vectors
are never regenerated silently: ``tests/domain/test_backup.py`` checks that this script
still produces exactly the committed file, and that ``tipbox.backup`` agrees with it.

This script does not use ``tipbox``: it derives the identity's Ed25519 seed with
``hashlib.blake2b`` (the definition of ``crypto_kdf_derive_from_key``), hashes with
``hashlib.blake2b`` and signs with libsodium's ``crypto_sign`` directly, so that the
vectors check the implementation rather than repeat it. Ed25519 is deterministic and the
inputs are fixed, so the output is deterministic. The sealed onion service keys are built
as libsodium's ``crypto_box_seal`` builds them, with a fixed ephemeral key instead of a
random one, and Tor's key files and addresses from RFC 8032 and rend-spec-v3 directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
from typing import Any

from nacl.bindings import (
    crypto_box,
    crypto_scalarmult_base,
    crypto_sign,
    crypto_sign_seed_keypair,
)

PREFIX = b"tipbox.backup.v1\x00"
TAG = b"tipbox.backup-manifest.v1"
ONION_PREFIX = b"tipbox.backup-onion.v1\x00"
TOR_SECRET_HEADER = b"== ed25519v1-secret: type0 ==\x00\x00\x00"


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


def tor_secret_file(seed: bytes) -> tuple[bytes, bytes]:
    """Tor's ``hs_ed25519_secret_key`` file for an Ed25519 seed, and the public key: the
    expanded key is SHA-512 of the seed, clamped (RFC 8032), after Tor's 32-byte header."""
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 127
    expanded[31] |= 64
    public, _secret = crypto_sign_seed_keypair(seed)
    return TOR_SECRET_HEADER + bytes(expanded), bytes(public)


def onion_address(public: bytes) -> str:
    """Tor's rend-spec-v3 address: base32(pk ‖ checksum ‖ 0x03), lower case, ".onion"."""
    checksum = hashlib.sha3_256(b".onion checksum" + public + b"\x03").digest()[:2]
    return base64.b32encode(public + checksum + b"\x03").decode().lower() + ".onion"


def seal(message: bytes, recipient: bytes, ephemeral_secret: bytes) -> bytes:
    """``crypto_box_seal`` with a fixed ephemeral key, so that the vector is reproducible:
    epk ‖ crypto_box(m, BLAKE2b-192(epk ‖ pk), pk, esk), as libsodium builds it."""
    ephemeral = bytes(crypto_scalarmult_base(ephemeral_secret))
    nonce = hashlib.blake2b(ephemeral + recipient, digest_size=24).digest()
    return ephemeral + bytes(crypto_box(message, nonce, recipient, ephemeral_secret))


def onion_plaintext(service: str, secret_file: bytes) -> bytes:
    """``"tipbox.backup-onion.v1" ‖ 0x00 ‖ u8 |service| ‖ service ‖ secret key file``."""
    return ONION_PREFIX + bytes([len(service)]) + service.encode() + secret_file


def onion_vectors(identity_seed: bytes) -> dict[str, Any]:
    """Sealed onion service keys (section 14): reader vectors with fixed ephemeral keys."""
    x_secret = kdf(identity_seed, 2, b"tbidnty1")
    x_public = bytes(crypto_scalarmult_base(x_secret))
    other_public = bytes(crypto_scalarmult_base(fixed("other x25519", 32)))
    valid = []
    for number, service in enumerate(("tipbox-source", "tipbox-journalist")):
        secret_file, public = tor_secret_file(fixed(f"tor seed {service}", 32))
        plaintext = onion_plaintext(service, secret_file)
        valid.append(
            {
                "service": service,
                "secret_key_file": secret_file.hex(),
                "public_key": public.hex(),
                "address": onion_address(public),
                "plaintext": plaintext.hex(),
                "sealed": seal(plaintext, x_public, fixed(f"ephemeral {number}", 32)).hex(),
            }
        )
    good_file, _ = tor_secret_file(fixed("tor seed tipbox-source", 32))
    unclamped = bytearray(good_file)
    unclamped[32] |= 1
    bad_header = b"== ed25519v1-public: type0 ==\x00\x00\x00" + good_file[32:]
    src, jrn = "tipbox-source", "tipbox-journalist"
    good = onion_plaintext(src, good_file)
    cases = [
        ("sealed to another key", src, other_public, good, "backup_onion.open"),
        ("another prefix", src, x_public, b"tipbox.backup-onion.v2\x00" + good[23:],
         "backup_onion.prefix"),
        ("sealed for the other service", jrn, x_public, good, "backup_onion.service"),
        ("a service name one byte longer", src, x_public,
         onion_plaintext(src + "x", good_file), "backup_onion.service"),
        ("a 95-byte key file", src, x_public, good[:-1], "backup_onion.length"),
        ("a 97-byte key file", src, x_public, good + b"\x00", "backup_onion.length"),
        ("an unclamped scalar", src, x_public, onion_plaintext(src, bytes(unclamped)),
         "backup_onion.key"),
        ("the public key file's header", src, x_public, onion_plaintext(src, bad_header),
         "backup_onion.key"),
    ]  # fmt: skip
    invalid = [
        {
            "comment": comment,
            "service": service,
            "sealed": seal(plaintext, recipient, fixed(f"ephemeral {comment}", 32)).hex(),
            "check": check,
        }
        for comment, service, recipient, plaintext, check in cases
    ]
    truncated = bytes.fromhex(valid[0]["sealed"])[:-1]
    invalid.append(
        {
            "comment": "one byte short",
            "service": "tipbox-source",
            "sealed": truncated.hex(),
            "check": "backup_onion.open",
        }
    )
    return {"identity_x25519": x_public.hex(), "valid": valid, "invalid": invalid}


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
        "onion": onion_vectors(seed),
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
