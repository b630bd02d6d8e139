"""``tipbox init`` as a domain function: keys, directory, first admin, grants, recovery."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tipbox import directory, instance, keyring
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto.directory import Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role, keypair_from_seed, write_identity_files
from tipbox.crypto.recovery import generate_recovery_secret, recovery_keypair
from tipbox.models import DirectoryEntry, Grant, Journalist


def _init(db: Session, config: Config, **kwargs: object) -> instance.InitResult:
    result = instance.init_instance(db, config, name="Test", admin_username="admin", **kwargs)  # type: ignore[arg-type]
    db.commit()
    return result


def _admin(db: Session) -> Journalist:
    return db.scalars(select(Journalist).where(Journalist.username == "admin")).one()


def test_init_signs_every_key_into_the_directory(db: Session, config: Config) -> None:
    result = _init(db, config, recovery_in_place=True)
    identity = directory.identity_public(db)
    assert identity == result.identity
    roles = sorted(entry.role for entry in directory.entries(db, identity))
    assert roles == [Role.IDENTITY, Role.NEWSROOM, Role.JOURNALIST, Role.RECOVERY, Role.METADATA]
    current = directory.current_newsroom_key(db, identity)
    assert current.key_id == result.newsroom.key_id
    assert current.status == Status.CURRENT
    report = instance.key_report(db, config.keys_dir)
    assert [(k.role, k.fingerprint) for k in report] == [
        (Role.IDENTITY, result.identity.fingerprint),
        (Role.NEWSROOM, result.newsroom.fingerprint),
        (Role.RECOVERY, result.recovery.fingerprint if result.recovery else ""),
        (Role.METADATA, directory.entries(db, identity, Role.METADATA)[0].public.fingerprint),
    ]


def test_admin_passphrase_opens_identity_and_newsroom_grants(db: Session, config: Config) -> None:
    result = _init(db, config)
    identity = directory.identity_public(db)
    unlocked = unlock_journalist(db, identity, _admin(db), result.admin.passphrase)
    assert unlocked.totp_secret == result.admin.totp_secret
    newsroom_seed = keyring.granted_seed(
        db, identity, unlocked.keypair, Role.NEWSROOM, result.newsroom.key_id
    )
    identity_seed = keyring.granted_seed(
        db, identity, unlocked.keypair, Role.IDENTITY, identity.key_id
    )
    assert keypair_from_seed(Role.NEWSROOM, newsroom_seed).public == result.newsroom
    assert keypair_from_seed(Role.IDENTITY, identity_seed).public == result.identity


def test_wrong_passphrase_unlocks_nothing(db: Session, config: Config) -> None:
    result = _init(db, config)
    words = result.admin.passphrase.split()
    wrong = " ".join([*words[:-1], "abacus" if words[-1] != "abacus" else "zoom"])
    with pytest.raises(Rejected, match="passphrase"):
        unlock_journalist(db, directory.identity_public(db), _admin(db), wrong)


def test_recovery_secret_alone_opens_every_granted_seed(db: Session, config: Config) -> None:
    result = _init(db, config, recovery_in_place=True)
    assert result.recovery_secret is not None
    identity = directory.identity_public(db)
    recovery = recovery_keypair(result.recovery_secret)
    seeds = {
        role: keyring.granted_seed(db, identity, recovery, role, key_id)
        for role, key_id in [
            (Role.IDENTITY, identity.key_id),
            (Role.NEWSROOM, result.newsroom.key_id),
            (Role.METADATA, directory.entries(db, identity, Role.METADATA)[0].key_id),
        ]
    }
    assert keypair_from_seed(Role.IDENTITY, seeds[Role.IDENTITY]).public == result.identity
    assert keypair_from_seed(Role.NEWSROOM, seeds[Role.NEWSROOM]).public == result.newsroom
    assert len(seeds[Role.METADATA]) == 32
    other = recovery_keypair(generate_recovery_secret())
    with pytest.raises(Rejected):
        keyring.granted_seed(db, identity, other, Role.NEWSROOM, result.newsroom.key_id)


def test_offline_recovery_public_key_is_granted(db: Session, config: Config) -> None:
    secret = generate_recovery_secret()
    result = _init(db, config, recovery_public=recovery_keypair(secret).public)
    assert result.recovery_secret is None
    grantees = set(db.scalars(select(Grant.grantee_key_id)))
    assert recovery_keypair(secret).key_id in grantees


def test_init_refuses_a_second_time(db: Session, config: Config) -> None:
    _init(db, config)
    with pytest.raises(instance.AlreadyInitialised):
        _init(db, config)


def test_keys_dir_disagreeing_with_database_is_refused(db: Session, config: Config) -> None:
    _init(db, config)
    write_identity_files(config.keys_dir, keypair_from_seed(Role.IDENTITY, bytes(32)).public)
    with pytest.raises(Rejected, match=r"^identity\.mismatch:"):
        instance.key_report(db, config.keys_dir)


def test_tampered_directory_row_is_refused(db: Session, config: Config) -> None:
    result = _init(db, config)
    db.execute(
        update(DirectoryEntry)
        .where(DirectoryEntry.key_id == result.newsroom.key_id)
        .values(status=int(Status.RETIRED))
    )
    with pytest.raises(Rejected, match=r"^directory\.row:"):
        directory.entries(db, directory.identity_public(db))
