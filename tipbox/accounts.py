"""Journalist accounts: create one with a generated passphrase, a key pair and a TOTP secret.

The passphrase is generated (DESIGN 4.1: never chosen), shown once to whoever creates the
account, and stored only as an Argon2id verifier and the seed and TOTP boxes it opens.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pyotp
from sqlalchemy.orm import Session

from tipbox import directory, keyring
from tipbox.config import Argon2Cost
from tipbox.crypto.directory import Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.journalist import (
    JournalistKeyRecord,
    box_totp,
    open_totp,
    seal_seed_under_passphrase,
    unlock_with_keys,
)
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.crypto.passphrases import generate_passphrase
from tipbox.models import Journalist, new_public_id


@dataclass(frozen=True)
class Credentials:
    """What a new journalist is told once: username, passphrase and TOTP secret."""

    username: str
    passphrase: str = field(repr=False)
    totp_secret: str = field(repr=False)

    def totp_uri(self, issuer: str) -> str:
        """The ``otpauth://`` URI an authenticator app reads from a QR code."""
        return pyotp.TOTP(self.totp_secret).provisioning_uri(name=self.username, issuer_name=issuer)


@dataclass(frozen=True)
class NewJournalist:
    """A created account: the row, its key pair and seed, and the one-time credentials."""

    row: Journalist
    keypair: KeyPair
    seed: bytes = field(repr=False)
    credentials: Credentials


def create_journalist(
    session: Session,
    identity: KeyPair,
    username: str,
    *,
    is_admin: bool,
    cost: Argon2Cost,
    must_change_passphrase: bool,
) -> NewJournalist:
    """Create a journalist with a fresh key signed into the directory (no grants yet).

    The caller grants keys to the new entry (``keyring.grant``) in the same transaction.
    """
    public_id = new_public_id()
    passphrase = generate_passphrase()
    seed = new_seed()
    keypair = keypair_from_seed(Role.JOURNALIST, seed)
    record, keys = seal_seed_under_passphrase(public_id, passphrase, seed, cost)
    totp_secret = pyotp.random_base32()
    totp_box = box_totp(keys.totp_key, public_id, base64.b32decode(totp_secret))
    keyring.sign_into_directory(session, identity, keypair.public, Status.ACTIVE, public_id)
    row = Journalist(
        public_id=public_id,
        username=username,
        is_admin=is_admin,
        is_active=True,
        key_id=keypair.key_id,
        kdf_salt=record.salt,
        kdf_opslimit=record.opslimit,
        kdf_memlimit=record.memlimit,
        verifier=record.verifier,
        seed_box=record.seed_box,
        totp_box=totp_box,
        must_change_passphrase=must_change_passphrase,
    )
    session.add(row)
    session.flush()
    return NewJournalist(row, keypair, seed, Credentials(username, passphrase, totp_secret))


@dataclass(frozen=True)
class Unlocked:
    """A journalist's key pair and TOTP secret, opened with their passphrase."""

    keypair: KeyPair
    seed: bytes = field(repr=False)
    totp_secret: str = field(repr=False)


def unlock_journalist(
    session: Session, identity: PublicKeys, row: Journalist, passphrase: str
) -> Unlocked:
    """Open ``row``'s seed and TOTP boxes with ``passphrase``; ``Rejected`` if it is wrong.

    The public keys the box is bound to come from the journalist's verified directory entry.
    """
    if row.key_id is None or row.seed_box is None or row.totp_box is None:
        raise Rejected("journalist.key: this account has no key")
    public = directory.entry(session, identity, row.key_id).public
    record = JournalistKeyRecord(
        salt=row.kdf_salt,
        opslimit=row.kdf_opslimit,
        memlimit=row.kdf_memlimit,
        verifier=row.verifier,
        seed_box=row.seed_box,
    )
    seed, keys = unlock_with_keys(record, row.public_id, public, passphrase)
    totp = base64.b32encode(open_totp(keys.totp_key, row.public_id, row.totp_box)).decode()
    return Unlocked(keypair_from_seed(Role.JOURNALIST, seed), seed, totp)
