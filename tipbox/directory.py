"""The signed directory as stored in the database: read and verify (public side).

Every public key the system seals to is read through here, and only after its entry
verifies against the identity key (DESIGN invariant 7). The source app may import this
module: it touches no private key.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox.crypto.directory import Entry, Status, verify_entry
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.models import DirectoryEntry, InstanceSettings


class NotInitialised(Exception):  # noqa: N818 - a state, not an error class name
    """The database has no instance yet (run ``tipbox init``)."""


def settings(session: Session) -> InstanceSettings:
    """The instance's settings row, or ``NotInitialised``."""
    row = session.get(InstanceSettings, 1)
    if row is None:
        raise NotInitialised("no tipbox instance in this database: run `tipbox init`")
    return row


def locked_settings(session: Session) -> InstanceSettings:
    """The settings row, locked until the transaction ends and read afresh; or
    ``NotInitialised``. On SQLite the write transaction already runs alone."""
    row = session.scalars(
        select(InstanceSettings)
        .where(InstanceSettings.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotInitialised("no tipbox instance in this database: run `tipbox init`")
    return row


def identity_public(session: Session) -> PublicKeys:
    """The identity public keys the database claims (compare with ``keys/``)."""
    row = settings(session)
    return PublicKeys(Role.IDENTITY, row.identity_x25519, row.identity_ed25519)


def verified(row: DirectoryEntry, identity: PublicKeys) -> Entry:
    """Verify one stored entry against the identity key; check the row agrees with it."""
    if identity.ed25519 is None:
        raise Rejected("directory.identity: identity key has no Ed25519 key")
    entry = verify_entry(identity.ed25519, row.entry, row.signature)
    if entry.key_id != row.key_id or entry.role != row.role or entry.status != row.status:
        raise Rejected("directory.row: row columns disagree with the signed entry")
    return entry


def entry(session: Session, identity: PublicKeys, key_id: bytes) -> Entry:
    """The verified entry for ``key_id``; ``Rejected`` if it is missing or does not verify."""
    row = session.get(DirectoryEntry, key_id)
    if row is None:
        raise Rejected("directory.missing: no directory entry for this key")
    return verified(row, identity)


def entries(session: Session, identity: PublicKeys, role: Role | None = None) -> list[Entry]:
    """Every entry (of ``role``, if given), each verified, in serial order."""
    query = select(DirectoryEntry).order_by(DirectoryEntry.serial)
    if role is not None:
        query = query.where(DirectoryEntry.role == int(role))
    return [verified(row, identity) for row in session.scalars(query)]


def current_newsroom_key(session: Session, identity: PublicKeys) -> Entry:
    """The verified current newsroom encryption key: the one new content is sealed to."""
    rows = session.scalars(
        select(DirectoryEntry).where(
            DirectoryEntry.role == int(Role.NEWSROOM),
            DirectoryEntry.status == int(Status.CURRENT),
        )
    ).all()
    if len(rows) != 1:
        raise Rejected("directory.current: there must be exactly one current newsroom key")
    return verified(rows[0], identity)


def journalist_signer(session: Session, identity: PublicKeys, key_id: bytes) -> Entry:
    """The verified entry of the journalist key ``key_id`` that signed a reply or note.

    ``Rejected`` if the entry is missing, does not verify, or is not a signing journalist
    key: a reply or note is trusted only through this (DESIGN invariant 7).
    """
    signer = entry(session, identity, key_id)
    if signer.role != Role.JOURNALIST or signer.ed25519 is None:
        raise Rejected("reply.signer: not a journalist key")
    return signer
