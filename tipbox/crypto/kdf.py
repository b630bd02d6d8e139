"""Key derivation and domain-separated hashing (docs/envelope.md, section 2).

``derive`` is libsodium's ``crypto_kdf_derive_from_key`` (BLAKE2b keyed by the parent key,
the little-endian subkey id as salt, the 8-byte context as personalisation). PyNaCl does
not bind crypto_kdf, so it is composed from ``crypto_generichash_blake2b_salt_personal``,
which is what libsodium itself does; tests/vectors/kdf.json proves the two agree.
"""

from __future__ import annotations

import struct

from nacl.bindings import crypto_generichash_blake2b_salt_personal

from tipbox.crypto.errors import Rejected

KEY_BYTES = 32
CONTEXT_BYTES = 8
SUBKEY_MIN = 16
SUBKEY_MAX = 64

# Every derivation context in one place, so that no two uses can collide.
CTX_IDENTITY = b"tbidnty1"  # identity seed -> 1: Ed25519 seed, 2: X25519 secret key
CTX_NEWSROOM = b"tbnwsrm1"  # newsroom encryption seed -> 1: X25519 secret key
CTX_JOURNALIST = b"tbjrnls1"  # journalist seed -> 1: X25519 secret key, 2: Ed25519 seed
CTX_RECOVERY = b"tbrecov1"  # recovery seed -> 1: X25519 secret key
CTX_SOURCE = b"tbsourc1"  # source seed -> 1: X25519 secret key
CTX_PASSPHRASE = b"tbpassp1"  # journalist Argon2id output -> 1: verifier, 2: KEK, 3: TOTP key
CTX_CODENAME = b"tbcoden1"  # codename Argon2id output -> 1: lookup value, 2: source seed
CTX_CONTENT = b"tbcontn1"  # item content key K -> 1: body key, 2: meta key
CTX_SESSION = b"tbsessn1"  # session secret S -> 1: row id (16 bytes), 2: box key
CTX_METADATA = b"tbmetad1"  # metadata seed -> 1: X25519 secret key, 2: tag key, 3: index key

ALL_CONTEXTS = (
    CTX_IDENTITY,
    CTX_NEWSROOM,
    CTX_JOURNALIST,
    CTX_RECOVERY,
    CTX_SOURCE,
    CTX_PASSPHRASE,
    CTX_CODENAME,
    CTX_CONTENT,
    CTX_SESSION,
    CTX_METADATA,
)


def derive(key: bytes, subkey_id: int, context: bytes, length: int = KEY_BYTES) -> bytes:
    """Return ``crypto_kdf_derive_from_key(length, subkey_id, context, key)``."""
    if len(key) != KEY_BYTES:
        raise Rejected("derivation key must be 32 bytes")
    if len(context) != CONTEXT_BYTES:
        raise Rejected("derivation context must be 8 bytes")
    if not SUBKEY_MIN <= length <= SUBKEY_MAX:
        raise Rejected("subkey length must be between 16 and 64 bytes")
    if not 0 <= subkey_id < 2**64:
        raise Rejected("subkey id out of range")
    salt = struct.pack("<Q", subkey_id) + bytes(8)
    person = context + bytes(8)
    return bytes(
        crypto_generichash_blake2b_salt_personal(
            b"", digest_size=length, key=key, salt=salt, person=person
        )
    )


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    """BLAKE2b-256 of ``tag || 0x00 || data``: a plain hash, separated by its tag.

    Plain (unkeyed, unsalted) BLAKE2b so that libsodium.js's standard build can compute it.
    """
    return blake2b_256(tag + b"\x00" + data)


def blake2b_256(data: bytes) -> bytes:
    """Plain BLAKE2b-256 (libsodium's ``crypto_generichash`` with a 32-byte output)."""
    return bytes(crypto_generichash_blake2b_salt_personal(data, digest_size=32))
