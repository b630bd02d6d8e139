"""Recovery (``tipbox.recovery_admin``): with every admin passphrase lost, the offline
recovery secret restores an admin's access to every item, and the recovery key is replaced.

Real databases (each backend) and blob store; nothing mocked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox import audit, directory, keyring, recovery_admin, rotation, sessions, tagging
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.crypto.recovery import generate_recovery_secret, recovery_keypair
from tipbox.models import DirectoryEntry, Grant, Journalist, SessionRow
from tipbox.storage import FilesystemBlobStore

from .test_rotation import Desk, Reader, make_desk


@pytest.fixture
def desk(db: Session, config: Config) -> Desk:
    return make_desk(db, config, FilesystemBlobStore(config.blob_dir))


def _new_recovery() -> tuple[str, PublicKeys]:
    """A recovery key made offline (``tipbox keys recovery-new``): its words and public key."""
    secret = generate_recovery_secret()
    return secret, recovery_keypair(secret).public


def _recover(desk: Desk, secret: str, username: str, new: PublicKeys) -> recovery_admin.Recovered:
    result = recovery_admin.recover(desk.db, desk.config, desk.identity, secret, username, new)
    desk.db.commit()
    return result


def _reader(desk: Desk, username: str, passphrase: str) -> Reader:
    desk.db.rollback()
    row = desk.db.scalars(
        select(Journalist)
        .where(Journalist.username == username)
        .execution_options(populate_existing=True)
    ).one()
    return Reader(row, unlock_journalist(desk.db, desk.identity, row, passphrase).keypair)


def _grants_to(db: Session, key_id: bytes) -> set[bytes]:
    db.rollback()
    return set(db.scalars(select(Grant.key_id).where(Grant.grantee_key_id == key_id)))


def _recovery_entries(db: Session) -> list[bytes]:
    db.rollback()
    query = select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.RECOVERY))
    return list(db.scalars(query))


def _content(desk: Desk) -> list[str]:
    """Items under a retiring key and under the current one, replies and notes among them."""
    desk.submit("under the first key", {"a.txt": b"file one"})
    desk.write(Kind.NOTE, "the admin's note")
    desk.rotate()
    desk.submit("under the second key")
    desk.write(Kind.REPLY, "the admin's reply")
    return [
        "under the first key",
        "a.txt=file one",
        "the admin's note",
        "under the second key",
        "the admin's reply",
    ]


def test_recovery_restores_every_item_when_every_admin_passphrase_is_lost(desk: Desk) -> None:
    expected = _content(desk)
    old_keys = tagging.open_metadata_keys(desk.db, desk.identity, desk.admin.keys, is_admin=True)
    assert old_keys is not None
    tagging.add_tag(desk.db, old_keys, desk.source_id, "Ministry")
    desk.db.commit()
    old_admin_key = desk.admin.keys.key_id
    old_recovery = recovery_keypair(desk.recovery_secret).key_id
    # The admin's passphrase is lost: only the 20 words written on paper are left.
    new_secret, new_public = _new_recovery()
    result = _recover(desk, desk.recovery_secret, "admin", new_public)
    assert not result.created
    assert result.missing == ()
    assert result.recovery == new_public

    admin = _reader(desk, "admin", result.credentials.passphrase)
    assert admin.keys.key_id != old_admin_key
    assert desk.read(admin) == expected  # replies and notes still verify
    keys = tagging.open_metadata_keys(desk.db, desk.identity, admin.keys, is_admin=True)
    assert keys is not None
    assert tagging.all_tags(desk.db, keys) == ["Ministry"]
    # The restored admin is an admin again: holds the identity seed and can rotate.
    assert Role.IDENTITY in {
        Role(role)
        for role in desk.db.scalars(
            select(DirectoryEntry.role)
            .join(Grant, Grant.key_id == DirectoryEntry.key_id)
            .where(Grant.grantee_key_id == admin.keys.key_id)
        )
    }
    desk.admin = admin
    rotated = desk.rotate()
    assert desk.read(admin) == expected
    # The lost key opens nothing any more (its entry stays: it vouches for what it signed).
    assert _grants_to(desk.db, old_admin_key) == set()
    assert desk.db.get(DirectoryEntry, old_admin_key) is not None
    with pytest.raises(Rejected):
        unlock_journalist(desk.db, desk.identity, admin.row, desk.admin_credentials.passphrase)
    desk.db.rollback()
    # The old recovery key is replaced: entry and grants gone, the new one holds everything.
    assert _recovery_entries(desk.db) == [new_public.key_id]
    assert _grants_to(desk.db, old_recovery) == set()
    assert _grants_to(desk.db, new_public.key_id) == _grants_to(desk.db, admin.keys.key_id)
    assert rotated.current.key_id in _grants_to(desk.db, new_public.key_id)
    with pytest.raises(recovery_admin.RecoveryRefused, match="not the recovery key"):
        _recover(desk, desk.recovery_secret, "admin", _new_recovery()[1])
    desk.db.rollback()
    (event,) = audit.events(desk.db, action_prefix="key.recover")
    assert event.detail == {"admins": "admin", "recovery_key": new_public.short_id}
    # And the new secret works the next time.
    again = _recover(desk, new_secret, "admin", _new_recovery()[1])
    assert desk.read(_reader(desk, "admin", again.credentials.passphrase)) == expected


def test_recovery_can_make_a_new_admin(desk: Desk) -> None:
    expected = _content(desk)
    result = _recover(desk, desk.recovery_secret, "rescue", _new_recovery()[1])
    assert result.created
    rescue = _reader(desk, "rescue", result.credentials.passphrase)
    assert rescue.row.is_admin
    assert desk.read(rescue) == expected
    # The other admin's key is left alone: the new admin resets or removes that account.
    assert _grants_to(desk.db, desk.admin.keys.key_id)


def test_recovery_ends_the_admins_sessions_and_clears_a_lock(desk: Desk) -> None:
    now = datetime.now(UTC)
    sessions.create(desk.db, "journalist", desk.admin.row.id, "admin", None, {}, 600, 3600, now)
    desk.admin.row.failed_login_count = 9
    desk.admin.row.locked_until = now + timedelta(days=1)
    desk.db.commit()
    result = _recover(desk, desk.recovery_secret, "admin", _new_recovery()[1])
    assert desk.db.scalar(select(func.count()).select_from(SessionRow)) == 0
    admin = _reader(desk, "admin", result.credentials.passphrase)
    assert (admin.row.failed_login_count, admin.row.locked_until) == (0, None)
    assert admin.row.is_admin


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("not twenty words", Rejected),
        ("another recovery key", recovery_admin.RecoveryRefused),
        ("not an admin", recovery_admin.RecoveryRefused),
    ],
)
def test_recovery_refuses_and_changes_nothing(
    desk: Desk, case: str, error: type[Exception]
) -> None:
    words = {
        "not twenty words": "apple banana cherry",
        "another recovery key": generate_recovery_secret(),
        "not an admin": desk.recovery_secret,
    }[case]
    username = "bob" if case == "not an admin" else "admin"
    before = _recovery_entries(desk.db)
    with pytest.raises(error):
        _recover(desk, words, username, _new_recovery()[1])
    desk.db.rollback()
    assert _recovery_entries(desk.db) == before
    assert desk.read(desk.admin) == []
    assert audit.events(desk.db, action_prefix="key.recover") == []


def test_recovery_refuses_the_same_recovery_key_again(desk: Desk) -> None:
    same = recovery_keypair(desk.recovery_secret).public
    with pytest.raises(recovery_admin.RecoveryRefused, match="already in the directory"):
        _recover(desk, desk.recovery_secret, "admin", same)
    desk.db.rollback()


def test_a_rotation_grants_the_new_key_to_the_recovery_key(desk: Desk) -> None:
    n2 = desk.rotate().current
    recovery = recovery_keypair(desk.recovery_secret)
    seed = keyring.granted_seed(desk.db, desk.identity, recovery, Role.NEWSROOM, n2.key_id)
    assert seed
    assert rotation.current_key(desk.db, desk.identity).public == n2
    assert directory.entry(desk.db, desk.identity, recovery.key_id).role == Role.RECOVERY
