"""Grants: a key's seed sealed to a grantee (docs/envelope.md section 5).

Newsroom and metadata seeds go to every active journalist, the identity seed to admins,
all of them to the recovery key. Private side: only the journalist app, the keyring and the
CLI import this.
Rejections name their check (``grant.open``, ``grant.seed``, …) at the start of the message.
"""

from __future__ import annotations

from nacl.bindings import crypto_box_seal, crypto_box_seal_open
from nacl.exceptions import CryptoError

from tipbox.crypto.directory import Entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KEY_ID_BYTES, SEED_BYTES, KeyPair, Role, keypair_from_seed

GRANT_PREFIX = b"tipbox.grant.v1"
PLAINTEXT_BYTES = len(GRANT_PREFIX) + 1 + 1 + 2 * KEY_ID_BYTES + SEED_BYTES  # 81
GRANT_BYTES = PLAINTEXT_BYTES + 48  # crypto_box_seal adds an ephemeral key and a MAC

GRANTABLE_ROLES = (Role.IDENTITY, Role.NEWSROOM, Role.METADATA)
GRANTEE_ROLES = (Role.JOURNALIST, Role.RECOVERY)

_ROLE = len(GRANT_PREFIX) + 1
_KEY_ID = _ROLE + 1
_GRANTEE = _KEY_ID + KEY_ID_BYTES
_SEED = _GRANTEE + KEY_ID_BYTES


def grant_plaintext(granted_role: Role, key_id: bytes, grantee_id: bytes, seed: bytes) -> bytes:
    """The 81-byte plaintext of a grant (no checks: see ``make_grant``)."""
    return GRANT_PREFIX + b"\x00" + bytes([granted_role]) + key_id + grantee_id + seed


def make_grant(granted_role: Role, key_id: bytes, seed: bytes, grantee_entry: Entry) -> bytes:
    """Seal ``seed`` (of the key ``key_id``) to the grantee of a verified directory entry.

    ``grantee_entry`` must come from ``directory.verify_entry``: the grantee is a journalist
    or the recovery key. The seed must derive the key it is said to be, so that a mistake
    here cannot hand out the wrong key.
    """
    if granted_role not in GRANTABLE_ROLES:
        raise Rejected("grant.role: only identity, newsroom and metadata seeds are granted")
    if grantee_entry.role not in GRANTEE_ROLES:
        raise Rejected("grant.grantee: grantee must be a journalist or the recovery key")
    if keypair_from_seed(granted_role, seed).key_id != key_id:
        raise Rejected("grant.seed: seed does not derive the granted key")
    plaintext = grant_plaintext(granted_role, key_id, grantee_entry.key_id, seed)
    return bytes(crypto_box_seal(plaintext, grantee_entry.x25519))


def open_grant(
    grant: bytes,
    grantee_keypair: KeyPair,
    expected_role: Role,
    expected_key_id: bytes,
    directory_entry_of_granted_key: Entry,
) -> bytes:
    """Open a grant with the grantee's key pair and return the granted seed (section 5).

    ``directory_entry_of_granted_key`` must be the verified entry for ``expected_key_id``.
    Rejects: a box that does not open, a wrong length, prefix or separator, another role,
    key id or grantee id than expected, and a seed whose derived public keys are not the
    ones the key id and the directory entry name.
    """
    if expected_role not in GRANTABLE_ROLES:
        raise Rejected("grant.role: only identity, newsroom and metadata seeds are granted")
    try:
        plaintext = bytes(
            crypto_box_seal_open(
                grant, grantee_keypair.x25519_public, grantee_keypair.x25519_private
            )
        )
    except (CryptoError, ValueError, TypeError):
        raise Rejected("grant.open: grant does not open with this key") from None
    if len(plaintext) != PLAINTEXT_BYTES:
        raise Rejected("grant.length: grant plaintext must be 81 bytes")
    if plaintext[: len(GRANT_PREFIX)] != GRANT_PREFIX:
        raise Rejected("grant.prefix: not a tipbox grant")
    if plaintext[len(GRANT_PREFIX)] != 0:
        raise Rejected("grant.separator: separator byte is not zero")
    if plaintext[_ROLE] != expected_role:
        raise Rejected("grant.role: grant is for another role")
    key_id = plaintext[_KEY_ID:_GRANTEE]
    if key_id != expected_key_id:
        raise Rejected("grant.key_id: grant is for another key")
    if plaintext[_GRANTEE:_SEED] != grantee_keypair.key_id:
        raise Rejected("grant.grantee_id: grant names another grantee")
    seed = plaintext[_SEED:]
    derived = keypair_from_seed(Role(expected_role), seed).public
    if derived.key_id != key_id:
        raise Rejected("grant.seed: seed does not derive the granted key")
    entry = directory_entry_of_granted_key
    if entry.role != expected_role or entry.key_id != expected_key_id or entry.public != derived:
        raise Rejected("grant.directory: seed does not match the directory entry")
    return seed
