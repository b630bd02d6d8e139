"""Create an instance (``tipbox init``) and report on its keys (``tipbox keys show``).

Initialisation makes, in one transaction: the identity key and its self-signed entry, the
first newsroom encryption key, the first admin (generated passphrase and TOTP secret), the
recovery key's entry when one is given, the metadata key that seals tags, and the grants
DESIGN 4.1 asks for. Seeds exist
only in memory here and leave the process only inside grants and boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox import directory, keyring, tagging
from tipbox.accounts import Credentials, create_journalist
from tipbox.config import Config
from tipbox.crypto.codenames import new_instance_salt
from tipbox.crypto.directory import Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.identity import identity_entry, sign_entry
from tipbox.crypto.keys import (
    KeyPair,
    PublicKeys,
    Role,
    keypair_from_seed,
    new_seed,
    read_identity_file,
    write_identity_files,
)
from tipbox.crypto.recovery import generate_recovery_secret, recovery_keypair
from tipbox.models import DirectoryEntry, InstanceSettings, NewsroomKey, Wrap
from tipbox.submissions import commits_accepted_until


class AlreadyInitialised(Exception):  # noqa: N818 - a state, not an error class name
    """``tipbox init`` ran against a database that already holds an instance."""


@dataclass(frozen=True)
class InitResult:
    """What ``tipbox init`` prints once: fingerprints and the first admin's secrets."""

    identity: PublicKeys
    newsroom: PublicKeys
    admin: Credentials
    recovery: PublicKeys | None
    # Only when the recovery key was made in place (demo): the words to write down.
    recovery_secret: str | None = field(default=None, repr=False)


def init_instance(
    session: Session,
    config: Config,
    *,
    name: str,
    admin_username: str,
    recovery_public: PublicKeys | None = None,
    recovery_in_place: bool = False,
) -> InitResult:
    """Create the instance's keys, first admin and grants; export the identity to ``keys/``.

    Exactly one of ``recovery_public`` (the public half of a key made offline) or
    ``recovery_in_place`` (demo only: make it here and return the secret) may be given;
    with neither, the instance has no recovery key until an admin adds one.
    """
    if recovery_public is not None and recovery_in_place:
        raise ValueError("give a recovery public key or make one in place, not both")
    if session.get(InstanceSettings, 1) is not None:
        raise AlreadyInitialised("this database already holds a tipbox instance")

    identity_seed = new_seed()
    identity = keypair_from_seed(Role.IDENTITY, identity_seed)
    _add_identity(session, config, name, identity)

    newsroom_seed = new_seed()
    newsroom = keypair_from_seed(Role.NEWSROOM, newsroom_seed)
    keyring.sign_into_directory(session, identity, newsroom.public, Status.CURRENT)
    session.add(NewsroomKey(key_id=newsroom.key_id))

    admin = create_journalist(
        session,
        identity,
        admin_username,
        is_admin=True,
        cost=config.journalist_kdf,
        must_change_passphrase=False,
    )
    admin_entry = directory.entry(session, identity.public, admin.keypair.key_id)
    keyring.grant(session, identity, identity_seed, admin_entry)
    keyring.grant(session, newsroom, newsroom_seed, admin_entry)

    recovery_secret = None
    if recovery_in_place:
        recovery_secret = generate_recovery_secret()
        recovery_public = recovery_keypair(recovery_secret).public
    if recovery_public is not None:
        if recovery_public.role != Role.RECOVERY:
            raise Rejected("recovery.role: not a recovery public key")
        entry = keyring.sign_into_directory(session, identity, recovery_public, Status.ACTIVE)
        keyring.grant(session, identity, identity_seed, entry)
        keyring.grant(session, newsroom, newsroom_seed, entry)

    # After the admin and the recovery key, so that both are granted it.
    tagging.create_metadata_key(session, identity)
    session.flush()
    write_identity_files(config.keys_dir, identity.public)
    return InitResult(
        identity.public, newsroom.public, admin.credentials, recovery_public, recovery_secret
    )


def _add_identity(session: Session, config: Config, name: str, identity: KeyPair) -> None:
    """Insert the identity's self-signed entry (serial 1) and the settings row."""
    entry = identity_entry(identity, serial=1)
    entry_bytes, signature = sign_entry(identity, entry)
    session.add(
        DirectoryEntry(
            key_id=entry.key_id,
            role=int(entry.role),
            status=int(entry.status),
            subject_id=None,
            x25519=entry.x25519,
            ed25519=entry.ed25519,
            serial=entry.serial,
            entry=entry_bytes,
            signature=signature,
        )
    )
    session.flush()
    public = identity.public
    assert public.ed25519 is not None
    session.add(
        InstanceSettings(
            id=1,
            name=name,
            codename_salt=new_instance_salt(),
            codename_opslimit=config.codename_kdf.opslimit,
            codename_memlimit=config.codename_kdf.memlimit,
            identity_key_id=public.key_id,
            identity_x25519=public.x25519,
            identity_ed25519=public.ed25519,
            next_directory_serial=2,
        )
    )
    session.flush()


@dataclass(frozen=True)
class KeyInfo:
    """One key as ``tipbox keys show|status`` and the admin key page list it.

    For newsroom keys: ``wrapped_items``, how many items are still wrapped to the key
    (None for other roles); ``retiring_since`` and ``commits_until`` (the end of its grace
    period, when the report was given one) once it is retiring; ``retired_on`` once retired.
    """

    role: Role
    status: Status
    fingerprint: str
    short_id: str
    created_on: date
    key_id: bytes = b""
    wrapped_items: int | None = None
    retiring_since: datetime | None = None
    commits_until: datetime | None = None
    retired_on: date | None = None


def check_identity_file(session: Session, keys_dir: Path) -> PublicKeys:
    """Return the identity from ``keys/``, or ``Rejected`` if the database disagrees."""
    on_disk = read_identity_file(keys_dir)
    if on_disk.key_id != directory.identity_public(session).key_id:
        raise Rejected("identity.mismatch: keys/ and the database name different identity keys")
    return on_disk


def key_report(
    session: Session, keys_dir: Path, *, grace_seconds: int | None = None
) -> list[KeyInfo]:
    """Every identity, newsroom, recovery and metadata key, verified against the identity in
    ``keys/``, with the newsroom keys' lifecycle and how many items each still wraps.

    ``grace_seconds`` (``Config.key_grace_seconds``) fills in ``commits_until``.
    """
    identity = check_identity_file(session, keys_dir)
    created = {row.key_id: row.created_on for row in session.scalars(select(DirectoryEntry))}
    lifecycle = {row.key_id: row for row in session.scalars(select(NewsroomKey))}
    # One grouped count over the wraps' key index, newsroom keys only (not sources' keys).
    newsroom_ids = select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.NEWSROOM))
    counts = session.execute(
        select(Wrap.key_id, func.count()).where(Wrap.key_id.in_(newsroom_ids)).group_by(Wrap.key_id)
    )
    wrapped: dict[bytes, int] = {key_id: count for key_id, count in counts}
    report = []
    for entry in directory.entries(session, identity):
        if entry.role == Role.JOURNALIST:
            continue
        public = entry.public
        info = KeyInfo(
            entry.role,
            entry.status,
            public.fingerprint,
            public.short_id,
            created[entry.key_id],
            key_id=entry.key_id,
        )
        if entry.role == Role.NEWSROOM:
            key = lifecycle.get(entry.key_id)
            until = None
            if key is not None and grace_seconds is not None:
                until = commits_accepted_until(key, grace_seconds)
            info = replace(
                info,
                wrapped_items=wrapped.get(entry.key_id, 0),
                retiring_since=None if key is None else key.retiring_since,
                commits_until=until,
                retired_on=None if key is None else key.retired_on,
            )
        report.append(info)
    return report
