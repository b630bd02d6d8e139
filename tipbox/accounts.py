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


@dataclass(frozen=True)
class IssuedKey:
    """A key issued to an account: the key pair, its seed and the one-time credentials."""

    keypair: KeyPair
    seed: bytes = field(repr=False)
    credentials: Credentials


def issue_key(session: Session, identity: KeyPair, row: Journalist, cost: Argon2Cost) -> IssuedKey:
    """Give ``row`` a generated passphrase, a new TOTP secret and a new key, signed into the
    directory as active for ``row.public_id`` by ``identity``.

    Sets the row's key and key-record columns (seed and TOTP boxes under the passphrase) and
    clears what belonged to the old credentials: the last TOTP step, the failure count and
    the lock. Everything else (the account's flags, any old key's grants and entry) is the
    caller's. ``row`` may be a new row not yet added to the session: add it after this call,
    since signing flushes the session and the row's key columns are not set before.
    """
    passphrase = generate_passphrase()
    seed = new_seed()
    keypair = keypair_from_seed(Role.JOURNALIST, seed)
    record, keys = seal_seed_under_passphrase(row.public_id, passphrase, seed, cost)
    totp_secret = pyotp.random_base32()
    keyring.sign_into_directory(session, identity, keypair.public, Status.ACTIVE, row.public_id)
    row.key_id = keypair.key_id
    row.kdf_salt = record.salt
    row.kdf_opslimit = record.opslimit
    row.kdf_memlimit = record.memlimit
    row.verifier = record.verifier
    row.seed_box = record.seed_box
    row.totp_box = box_totp(keys.totp_key, row.public_id, base64.b32decode(totp_secret))
    row.totp_last_step = None
    row.failed_login_count = 0
    row.locked_until = None
    return IssuedKey(keypair, seed, Credentials(row.username, passphrase, totp_secret))


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
    row = Journalist(
        public_id=new_public_id(),
        username=username,
        is_admin=is_admin,
        is_active=True,
        must_change_passphrase=must_change_passphrase,
    )
    issued = issue_key(session, identity, row, cost)
    session.add(row)
    session.flush()
    return NewJournalist(row, issued.keypair, issued.seed, issued.credentials)


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
