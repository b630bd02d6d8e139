"""The newsroom identity key: signing directory entries (docs/envelope.md section 4).

Private side: only the journalist app, the keyring and the CLI import this module.
"""

from __future__ import annotations

from tipbox.crypto.directory import Entry, Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, Role


def sign_entry(identity_keypair: KeyPair, entry: Entry) -> tuple[bytes, bytes]:
    """Sign ``entry`` with the identity key; return ``(entry bytes, signature)``.

    The result is verified before it is returned, so nothing is signed that a reader
    would reject.
    """
    if identity_keypair.role != Role.IDENTITY or identity_keypair.signing_key is None:
        raise Rejected("entry.signer: only the identity key signs directory entries")
    entry_bytes = entry.to_bytes()
    signature = identity_keypair.sign(entry_bytes)
    verify_entry(bytes(identity_keypair.signing_key.verify_key), entry_bytes, signature)
    return entry_bytes, signature


def identity_entry(identity_keypair: KeyPair, serial: int) -> Entry:
    """The identity key's own entry (role 1, status 4)."""
    return Entry.for_keys(identity_keypair.public, Status.ACTIVE, serial)


def sign_identity_entry(identity_keypair: KeyPair, serial: int) -> tuple[bytes, bytes]:
    """The identity key's self-signed entry: ``(entry bytes, signature)``."""
    return sign_entry(identity_keypair, identity_entry(identity_keypair, serial))
