"""The recovery key: a 20-word secret kept offline, and its public key file.

docs/envelope.md section 10. ``recovery_seed`` hashes the normalised words (no Argon2id:
20 words already carry about 258 bits), so recovery works on an offline machine with
nothing but the written-down secret. Private side: the CLI and the keyring import this.
"""

from __future__ import annotations

import json
import secrets

from tipbox.crypto import wordlist
from tipbox.crypto.codenames import parse_words
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import tagged_hash
from tipbox.crypto.keys import (
    KeyPair,
    PublicKeys,
    Role,
    check_key_file_fingerprint,
    key_file_hex32,
    keypair_from_seed,
    parse_key_file,
)

RECOVERY_WORDS = 20
RECOVERY_SECRET_TAG = b"tipbox.recovery-secret.v1"
RECOVERY_FORMAT = "tipbox-recovery-public-key"


def generate_recovery_secret() -> str:
    """Return a new recovery secret: 20 words drawn with ``secrets.choice``."""
    choices = wordlist.words()
    return " ".join(secrets.choice(choices) for _ in range(RECOVERY_WORDS))


def parse_recovery_secret(secret_text: str) -> str:
    """Return the normalised secret, or reject unless it is exactly 20 list words."""
    return parse_words(secret_text, RECOVERY_WORDS, "recovery")


def recovery_seed(secret_text: str) -> bytes:
    """``TH("tipbox.recovery-secret.v1", normalised UTF-8)`` of the typed secret."""
    return tagged_hash(RECOVERY_SECRET_TAG, parse_recovery_secret(secret_text).encode("utf-8"))


def recovery_keypair(secret_text: str) -> KeyPair:
    """The recovery key pair (role 4) of the typed secret."""
    return keypair_from_seed(Role.RECOVERY, recovery_seed(secret_text))


def recovery_public_file_text(public: PublicKeys) -> str:
    """The public key file that ``tipbox keys recovery-new`` writes (section 10)."""
    if public.role != Role.RECOVERY:
        raise Rejected("recovery_file.role: not a recovery key")
    data = {
        "format": RECOVERY_FORMAT,
        "version": 1,
        "x25519": public.x25519.hex(),
        "fingerprint": public.fingerprint,
    }
    return json.dumps(data, indent=2) + "\n"


def parse_recovery_public_file(text: str) -> PublicKeys:
    """Parse a recovery public key file; reject malformed input or a fingerprint mismatch."""
    check = "recovery_file"
    data = parse_key_file(
        text,
        format_name=RECOVERY_FORMAT,
        fields=("format", "version", "x25519", "fingerprint"),
        check=check,
    )
    public = PublicKeys(Role.RECOVERY, key_file_hex32(data, "x25519", check))
    check_key_file_fingerprint(data, public, check)
    return public
