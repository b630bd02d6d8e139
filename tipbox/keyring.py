"""The private-key side: sign keys into the directory, grant seeds, open grants.

Only the journalist app, the CLI and other private-side domain code import this module;
an import-linter contract keeps ``tipbox.source`` away from it (DESIGN invariant 2).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import make_grant, open_grant
from tipbox.crypto.identity import sign_entry
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.models import DirectoryEntry, Grant, InstanceSettings


def sign_into_directory(
    session: Session,
    identity: KeyPair,
    public: PublicKeys,
    status: Status,
    subject_id: bytes | None = None,
) -> Entry:
    """Sign ``public`` into the directory with the next serial; replace an older entry."""
    row_settings = directory.settings(session)
    serial = row_settings.next_directory_serial
    row_settings.next_directory_serial = serial + 1
    new = (
        Entry.for_keys(public, status, serial)
        if subject_id is None
        else Entry.for_keys(public, status, serial, subject_id=subject_id)
    )
    entry_bytes, signature = sign_entry(identity, new)
    row = session.get(DirectoryEntry, new.key_id)
    if row is None:
        row = DirectoryEntry(key_id=new.key_id)
        session.add(row)
    row.role = int(new.role)
    row.status = int(new.status)
    row.subject_id = subject_id
    row.x25519 = new.x25519
    row.ed25519 = new.ed25519
    row.serial = serial
    row.entry = entry_bytes
    row.signature = signature
    session.flush()
    return new


def grant(session: Session, granted: KeyPair, seed: bytes, grantee: Entry) -> None:
    """Seal ``seed`` (of ``granted``) to ``grantee``, replacing any earlier grant."""
    sealed = make_grant(granted.role, granted.key_id, seed, grantee)
    row = session.scalars(
        select(Grant).where(Grant.key_id == granted.key_id, Grant.grantee_key_id == grantee.key_id)
    ).one_or_none()
    if row is None:
        session.add(
            Grant(key_id=granted.key_id, grantee_key_id=grantee.key_id, sealed_grant=sealed)
        )
    else:
        row.sealed_grant = sealed
    session.flush()


def granted_seed(
    session: Session, identity: PublicKeys, grantee: KeyPair, role: Role, key_id: bytes
) -> bytes:
    """Open the grant of ``key_id`` to ``grantee``, checked against the verified directory."""
    row = session.scalars(
        select(Grant).where(Grant.key_id == key_id, Grant.grantee_key_id == grantee.key_id)
    ).one_or_none()
    if row is None:
        raise Rejected("grant.missing: no grant of this key to this grantee")
    granted_entry = directory.entry(session, identity, key_id)
    return open_grant(row.sealed_grant, grantee, role, key_id, granted_entry)


def granted_keypair(
    session: Session, identity: PublicKeys, grantee: KeyPair, role: Role, key_id: bytes
) -> KeyPair:
    """The key pair of ``key_id``, made from its seed as granted to ``grantee``."""
    return keypair_from_seed(role, granted_seed(session, identity, grantee, role, key_id))


def lock_directory(session: Session) -> InstanceSettings:
    """Lock the settings row until the transaction ends, and read it afresh.

    Whoever changes which keys exist or what they are (a rotation, a retirement, a
    recovery) takes this first, so that such changes run one at a time (two rotations
    cannot both make a key current) and each signs with the next serial. On SQLite the
    write transaction already runs alone; ``FOR UPDATE`` is left out there.
    """
    return directory.locked_settings(session)
