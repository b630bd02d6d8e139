"""Recovery: the offline recovery secret restores an admin when every admin passphrase is
lost, and the recovery key is replaced after that one use (DESIGN 4.1, docs/keys.md).

The recovery key (role 4) holds a grant of the identity seed, of every newsroom seed that is
not retired and of the metadata seed. ``recover``, in one transaction:

1. derives the recovery key pair from the 20 words and checks that the directory holds it;
2. gives the named admin account new generated credentials and a new key (or makes a new
   admin account under a name no account has), signed with the identity seed opened from
   the recovery key's grant, and grants that key every seed the recovery key holds;
3. signs the new recovery public key (made offline by ``tipbox keys recovery-new``) into the
   directory, grants it the same seeds, and deletes the old recovery key's entry and grants.

An existing admin's lost key loses its grants, so a passphrase found later opens nothing;
its directory entry stays, so the replies and notes it signed still verify (a reset by
another admin, ``journalists.reset``, deletes it: there the account's owner is at hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tipbox import audit, directory, journalists, keyring, sessions
from tipbox.accounts import Credentials, create_journalist, issue_key
from tipbox.config import Config
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.crypto.recovery import recovery_keypair
from tipbox.models import DirectoryEntry, Grant, Journalist


class RecoveryRefused(Exception):  # noqa: N818 - a refusal the operator reads
    """Recovery cannot go ahead; the message says why. Nothing was changed."""


@dataclass(frozen=True)
class Recovered:
    """A recovery: the restored admin's new credentials (shown once), the new recovery key,
    and the short ids of the seeds granted, and of any newsroom key that is not retired but
    that the old recovery key held no grant of (items wrapped only to it stay unreadable
    to the restored admin)."""

    credentials: Credentials = field(repr=False)
    created: bool
    recovery: PublicKeys
    granted: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class _Seed:
    """A seed the recovery key holds, with the key pair it makes."""

    keypair: KeyPair
    seed: bytes = field(repr=False)


def recover(
    session: Session,
    config: Config,
    identity: PublicKeys,
    secret: str,
    admin_username: str,
    new_recovery: PublicKeys,
) -> Recovered:
    """Restore ``admin_username`` with the recovery ``secret`` and replace the recovery key
    by ``new_recovery``; ``identity`` is the identity checked against ``keys/``.

    ``Rejected`` for a secret that is not 20 list words; ``RecoveryRefused`` for a secret
    that is not this instance's recovery key, a replacement that is not a new recovery key,
    or an account that is not an admin (or was removed). The caller commits.
    """
    recovery = _recovery_key(session, identity, secret)
    if new_recovery.role != Role.RECOVERY:
        raise RecoveryRefused("the new public key is not a recovery key")
    if session.get(DirectoryEntry, new_recovery.key_id) is not None:
        raise RecoveryRefused(
            "the new recovery key is already in the directory: make a new one offline "
            "with `tipbox keys recovery-new`"
        )
    keyring.lock_directory(session)
    held = _held_seeds(session, identity, recovery)
    identity_seed = next((s for s in held if s.keypair.role == Role.IDENTITY), None)
    if identity_seed is None:
        raise RecoveryRefused("the recovery key holds no grant of the identity key")
    row, credentials, created = _restore_admin(
        session, config, identity_seed.keypair, admin_username
    )
    assert row.key_id is not None
    _grant_all(session, identity, held, row.key_id)
    entry = keyring.sign_into_directory(session, identity_seed.keypair, new_recovery, Status.ACTIVE)
    _grant_all(session, identity, held, entry.key_id)
    _delete_key(session, recovery.key_id)
    sessions.destroy_all_for_user(session, sessions.JOURNALIST, row.id)
    audit.record(
        session, row.id, "key.recover", admins=row.username, recovery_key=new_recovery.short_id
    )
    return Recovered(
        credentials,
        created,
        new_recovery,
        tuple(s.keypair.public.short_id for s in held),
        _missing(session, identity, held),
    )


def _recovery_key(session: Session, identity: PublicKeys, secret: str) -> KeyPair:
    """The recovery key pair of ``secret``, if the directory holds it as the recovery key."""
    keypair = recovery_keypair(secret)
    row = session.get(DirectoryEntry, keypair.key_id, populate_existing=True)
    if row is None or directory.verified(row, identity).role != Role.RECOVERY:
        raise RecoveryRefused(
            "this secret is not the recovery key of this instance (or it was used and "
            "replaced already)"
        )
    return keypair


def _held_seeds(session: Session, identity: PublicKeys, recovery: KeyPair) -> list[_Seed]:
    """Every seed granted to the recovery key: identity, live newsroom keys, metadata."""
    rows = session.execute(
        select(Grant.key_id, DirectoryEntry.role)
        .join(DirectoryEntry, DirectoryEntry.key_id == Grant.key_id)
        .where(Grant.grantee_key_id == recovery.key_id)
        .order_by(DirectoryEntry.serial)
    ).all()
    held = []
    for key_id, role in rows:
        try:
            seed = keyring.granted_seed(session, identity, recovery, Role(role), key_id)
        except Rejected:
            continue  # a last resort restores what it can; ``Recovered.missing`` says what not
        held.append(_Seed(keypair_from_seed(Role(role), seed), seed))
    return held


def _restore_admin(
    session: Session, config: Config, identity_keys: KeyPair, username: str
) -> tuple[Journalist, Credentials, bool]:
    """The admin account with new credentials and key; a new admin for a new name."""
    name = journalists.check_username(username)
    row = session.scalars(
        select(Journalist)
        .where(Journalist.username == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        made = create_journalist(
            session,
            identity_keys,
            name,
            is_admin=True,
            cost=config.journalist_kdf,
            must_change_passphrase=False,
        )
        return made.row, made.credentials, True
    if row.removed_on is not None or not row.is_admin:
        raise RecoveryRefused(f"{name!r} is not an admin account: name an admin, or a new name")
    if row.key_id is not None:
        # The lost key opens nothing from now on; its entry still vouches for what it signed.
        session.execute(
            delete(Grant)
            .where(Grant.grantee_key_id == row.key_id)
            .execution_options(synchronize_session=False)
        )
    credentials = issue_key(session, identity_keys, row, config.journalist_kdf).credentials
    row.pending_x25519 = row.pending_ed25519 = None
    row.temporary_key = row.must_change_passphrase = False
    row.is_active = True
    session.flush()
    return row, credentials, False


def _grant_all(
    session: Session, identity: PublicKeys, held: list[_Seed], grantee_key_id: bytes
) -> None:
    grantee = directory.entry(session, identity, grantee_key_id)
    for granted in held:
        keyring.grant(session, granted.keypair, granted.seed, grantee)


def _delete_key(session: Session, key_id: bytes) -> None:
    """Delete a key's directory entry and every grant to or of it."""
    session.execute(
        delete(Grant)
        .where(or_(Grant.grantee_key_id == key_id, Grant.key_id == key_id))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(DirectoryEntry)
        .where(DirectoryEntry.key_id == key_id)
        .execution_options(synchronize_session=False)
    )
    session.flush()


def _missing(session: Session, identity: PublicKeys, held: list[_Seed]) -> tuple[str, ...]:
    """Short ids of the live newsroom keys the recovery key held no grant of."""
    granted = {s.keypair.key_id for s in held}
    live: list[Entry] = [
        entry
        for entry in directory.entries(session, identity, Role.NEWSROOM)
        if entry.status != Status.RETIRED and entry.key_id not in granted
    ]
    return tuple(entry.public.short_id for entry in live)
