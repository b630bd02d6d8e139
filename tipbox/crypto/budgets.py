"""Names of a source's own budget counters (docs/envelope.md section 15).

A source's submissions per hour are counted in a row of ``budget_counters`` whose key is a
keyed hash: ``KDF(source_seed, 2, tbsourc1)`` keys BLAKE2b-128 over the budget's name and
the window's end. The server learns the key only while the source's session is open (the
seed is in the session box), so a seized database cannot tell whose row a counter is, nor
link one hour's row of a source to another's.
"""

from __future__ import annotations

import struct

from nacl.bindings import crypto_generichash_blake2b_salt_personal

from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import CTX_SOURCE, KEY_BYTES, derive

# Subkey id of the budget key under the source seed (1 is the X25519 secret key).
BUDGET_SUBKEY_ID = 2
COUNTER_KEY_BYTES = 16
# A budget's name: 1 to 32 printable ASCII bytes, never a 0x00 (the separator).
MAX_NAME_BYTES = 32


def source_budget_key(source_seed: bytes) -> bytes:
    """``KDF(source_seed, 2, tbsourc1)``: the key of a source's own counters."""
    return derive(source_seed, BUDGET_SUBKEY_ID, CTX_SOURCE)


def counter_key(budget_key: bytes, name: bytes, window_end: int) -> bytes:
    """BLAKE2b-128 keyed by ``budget_key`` of ``name || 0x00 || u64le(window_end)``."""
    if len(budget_key) != KEY_BYTES:
        raise Rejected("budget key must be 32 bytes")
    if not 1 <= len(name) <= MAX_NAME_BYTES or not all(0x21 <= byte <= 0x7E for byte in name):
        raise Rejected("budget name must be 1 to 32 printable ASCII bytes")
    if not 0 <= window_end < 2**64:
        raise Rejected("window end out of range")
    message = name + b"\x00" + struct.pack("<Q", window_end)
    return bytes(
        crypto_generichash_blake2b_salt_personal(
            message, digest_size=COUNTER_KEY_BYTES, key=budget_key
        )
    )
