"""Generate tests/vectors/budgets.json (docs/envelope.md section 15).

Run once: ``python tests/vectors/make_budgets.py > tests/vectors/budgets.json``. The
vectors are never regenerated silently: ``tests/crypto/test_budget_keys.py`` checks that
this script still produces exactly the committed file, and that ``tipbox.crypto.budgets``
agrees with it. The script uses ``hashlib.blake2b`` only (the definition of
``crypto_kdf_derive_from_key`` and of keyed ``crypto_generichash``), not ``tipbox.crypto``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any


def kdf(key: bytes, subkey_id: int, context: bytes) -> bytes:
    """``crypto_kdf_derive_from_key(32, subkey_id, context, key)``."""
    salt = struct.pack("<Q", subkey_id) + bytes(8)
    return hashlib.blake2b(
        b"", digest_size=32, key=key, salt=salt, person=context + bytes(8)
    ).digest()


def fixed(label: str, size: int) -> bytes:
    """A fixed, reproducible byte string for the vectors."""
    return hashlib.blake2b(label.encode(), digest_size=size).digest()


def case(comment: str, seed: bytes, name: bytes, window_end: int) -> dict[str, Any]:
    """Source seed to budget key to the counter key of one window."""
    budget_key = kdf(seed, 2, b"tbsourc1")
    message = name + b"\x00" + struct.pack("<Q", window_end)
    counter = hashlib.blake2b(message, digest_size=16, key=budget_key).digest()
    return {
        "comment": comment,
        "source_seed": seed.hex(),
        "budget_key": budget_key.hex(),
        "name": name.decode("ascii"),
        "window_end": window_end,
        "message": message.hex(),
        "counter_key": counter.hex(),
    }


def build() -> dict[str, Any]:
    """Every vector, as the JSON document."""
    seed = fixed("source seed", 32)
    return {
        "valid": [
            case(
                "submissions in the hour ending 2026-11-25 13:00 UTC",
                seed,
                b"submissions",
                1_764_075_600,
            ),
            case("the next hour: an unrelated key", seed, b"submissions", 1_764_079_200),
            case(
                "another source, same hour", fixed("other seed", 32), b"submissions", 1_764_075_600
            ),
            case("window end 0 and a one-byte name", bytes(32), b"x", 0),
            case("largest window end", b"\xff" * 32, b"submissions", 2**64 - 1),
        ],
        "invalid": [
            {"comment": "empty name", "name": "", "window_end": 1},
            {"comment": "name with a space", "name": "two words", "window_end": 1},
            {"comment": "name of 33 bytes", "name": "a" * 33, "window_end": 1},
            {"comment": "negative window end", "name": "submissions", "window_end": -1},
            {"comment": "window end of 2**64", "name": "submissions", "window_end": 2**64},
        ],
    }


def render() -> str:
    """The JSON text of the vectors file."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
