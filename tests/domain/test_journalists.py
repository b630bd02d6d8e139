"""Journalist accounts (``tipbox.journalists``) and the first login that replaces an
admin's temporary key (``journalist_auth.complete_first_login``), issue #5.

Real instance and database (SQLite, and PostgreSQL when configured); nothing mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox import audit, conversations, directory, keyring, rotation, sessions, tagging, triage
from tipbox.accounts import Credentials
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status
from tipbox.crypto.errors import Rejected
from tipbox.crypto.grants import open_grant
from tipbox.crypto.keys import KeyPair, Role, keypair_from_seed, new_seed
from tipbox.crypto.passphrases import generate_passphrase
from tipbox.journalist_auth import (
    Argon2Gate,
    FirstLoginDone,
    FirstLoginRequired,
    LoginOk,
    change_passphrase,
    complete_first_login,
    login,
)
from tipbox.journalists import (
    AccountState,
    Admin,
    FingerprintMismatch,
    InvalidUsername,
    NotAllowed,
    UnknownJournalist,
    UsernameTaken,
    activate,
    add_journalist,
    confirm_pending_key,
    deactivate,
    list_journalists,
    pending_fingerprint,
    remove,
    reset,
    set_role,
    state_of,
)
from tipbox.models import (
    DirectoryEntry,
    Grant,
    Item,
    Journalist,
    NewsroomKey,
    ReadMarker,
    SessionRow,
    Source,
    Wrap,
)
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

from .opened import OpenedInstance, open_instance

LIMITS = Limits(max_message_chars=10_000, max_files=3, max_file_bytes=1 << 20)

T0 = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
STEP = timedelta(seconds=30)


@dataclass
class Clock:
    """Hands out login times one TOTP step apart, so that no code is ever spent twice."""

    now: datetime = T0
    ticks: Iterator[int] = field(default_factory=lambda: iter(range(1, 10_000)))

    def next(self) -> datetime:
        self.now = T0 + next(self.ticks) * STEP
        return self.now


@dataclass
class Desk:
    """An instance opened as its admin, with a note from the admin on one source."""

    db: Session
    config: Config
    store: FilesystemBlobStore
    opened: OpenedInstance
    gate: Argon2Gate
    clock: Clock
    note_id: bytes

    @property
    def admin(self) -> Admin:
        opened = self.opened
        return Admin(opened.admin.id, opened.admin_keys, opened.identity)

    @property
    def source_id(self) -> bytes:
        return self.opened.source.public_id

    def row(self, username: str) -> Journalist:
        query = select(Journalist).where(Journalist.username == username)
        return self.db.scalars(query.execution_options(populate_existing=True)).one()

    def add(self, username: str, *, is_admin: bool = False) -> Credentials:
        creds = add_journalist(self.db, self.config, self.admin, username, is_admin=is_admin)
        self.db.commit()
        return creds

    def login(self, username: str, passphrase: str, secret: str) -> LoginOk | None:
        at = self.clock.next()
        code = str(pyotp.TOTP(secret).at(at))
        result = login(self.db, self.config, username, passphrase, code, at, gate=self.gate)
        self.db.commit()
        return result

    def first_login(self, creds: Credentials) -> FirstLoginDone:
        ok = self.login(creds.username, creds.passphrase, creds.totp_secret)
        assert ok is not None
        assert (ok.must_change_passphrase, ok.first_login) == (True, True)
        done = complete_first_login(
            self.db,
            self.config,
            ok.journalist_id,
            creds.passphrase,
            self.clock.now,
            gate=self.gate,
        )
        self.db.commit()
        assert done is not None
        return done

    def confirmed(self, username: str) -> tuple[Credentials, str, KeyPair]:
        """A journalist added, past first login and confirmed: (credentials as added, their
        own passphrase, their key pair)."""
        creds = self.add(username)
        done = self.first_login(creds)
        confirm_pending_key(self.db, self.admin, username, done.fingerprint)
        self.db.commit()
        return creds, done.passphrase, keypair_from_seed(Role.JOURNALIST, done.login.key_seed)

    def view(self, reader: KeyPair) -> list[conversations.ItemView]:
        return conversations.conversation(
            self.db, self.store, self.opened.identity, reader, self.source_id
        )

    def granted_roles(self, key_id: bytes | None) -> dict[Role, set[bytes]]:
        """The keys granted to ``key_id``, by role."""
        found: dict[Role, set[bytes]] = {}
        for granted, role in self.db.execute(
            select(Grant.key_id, DirectoryEntry.role)
            .join(DirectoryEntry, DirectoryEntry.key_id == Grant.key_id)
            .where(Grant.grantee_key_id == key_id)
        ):
            found.setdefault(Role(role), set()).add(granted)
        return found

    def opens_nothing(self, keypair: KeyPair) -> None:
        """``keypair`` has no entry, no grant to it, and opens no grant in the database."""
        identity = self.opened.identity
        with pytest.raises(Rejected, match=r"^directory\.missing"):
            directory.entry(self.db, identity, keypair.key_id)
        assert self.granted_roles(keypair.key_id) == {}
        for row in self.db.scalars(select(Grant)):
            entry = directory.entry(self.db, identity, row.key_id)
            with pytest.raises(Rejected, match=r"^grant\.open"):
                open_grant(row.sealed_grant, keypair, entry.role, row.key_id, entry)
        for item in self.view(keypair):
            assert (item.damaged, item.text) == (True, None)

    def events(self) -> list[tuple[str | None, str, dict[str, audit.Detail]]]:
        return [
            (event.actor, event.action, event.detail)
            for event in reversed(audit.events(self.db, action_prefix="journalist."))
        ]


@pytest.fixture
def desk(db: Session, config: Config, blob_store: FilesystemBlobStore) -> Desk:
    opened = open_instance(db, config)
    note_id = conversations.add_note(
        db,
        blob_store,
        opened.identity,
        opened.admin,
        opened.admin_keys,
        opened.source.public_id,
        "call the lawyer",
    )
    db.commit()
    return Desk(db, config, blob_store, opened, Argon2Gate(2), Clock(), note_id)


def _session_count(db: Session, journalist_id: int) -> int:
    query = select(func.count()).where(SessionRow.journalist_id == journalist_id)
    return int(db.scalar(query) or 0)


def _live_newsroom(desk: Desk) -> set[bytes]:
    return {
        entry.key_id
        for entry in directory.entries(desk.db, desk.opened.identity, Role.NEWSROOM)
        if entry.status != Status.RETIRED
    }


# --- adding -----------------------------------------------------------------------------


def test_add_issues_temporary_credentials_and_a_signed_key_with_no_grants(desk: Desk) -> None:
    creds = desk.add("aigerim")
    assert creds.username == "aigerim"
    assert len(creds.passphrase.split()) == 7
    assert creds.passphrase not in repr(creds)
    row = desk.row("aigerim")
    assert (row.is_admin, row.temporary_key, row.must_change_passphrase) == (False, True, True)
    assert state_of(row) == AccountState.FIRST_LOGIN
    assert row.key_id is not None
    entry = directory.entry(desk.db, desk.opened.identity, row.key_id)
    assert (entry.role, entry.subject_id) == (Role.JOURNALIST, row.public_id)
    # A journalist's temporary key needs nothing: an admin grants the key made at first login.
    assert desk.granted_roles(row.key_id) == {}
    assert desk.events() == [("admin", "journalist.add", {"username": "aigerim", "admin": False})]
    # The temporary credentials log in, to the first-login page only.
    ok = desk.login("aigerim", creds.passphrase, creds.totp_secret)
    assert ok is not None
    assert (ok.role, ok.must_change_passphrase, ok.first_login) == ("journalist", True, True)
    assert not ok.awaiting_confirmation


def test_add_admin_grants_its_temporary_key_what_its_first_login_needs(desk: Desk) -> None:
    creds = desk.add("bek", is_admin=True)
    row = desk.row("bek")
    assert desk.granted_roles(row.key_id) == {
        Role.IDENTITY: {desk.opened.identity.key_id},
        Role.NEWSROOM: {desk.opened.newsroom.key_id},
        Role.METADATA: {tagging.metadata_key_id(desk.db)},
    }
    ok = desk.login("bek", creds.passphrase, creds.totp_secret)
    assert ok is not None
    assert (ok.role, ok.first_login) == ("admin", True)


def test_add_refuses_bad_and_taken_usernames_and_non_admins(desk: Desk) -> None:
    for bad in ("", "two words", "x" * 65, "semi;colon"):
        with pytest.raises(InvalidUsername):
            desk.add(bad)
    desk.db.rollback()
    assert desk.add("  айгерим.k  ").username == "айгерим.k"
    with pytest.raises(UsernameTaken):
        desk.add("admin")
    desk.db.rollback()
    _, _, keys = desk.confirmed("dana")
    as_journalist = Admin(desk.row("dana").id, keys, desk.opened.identity)
    with pytest.raises(NotAllowed):
        add_journalist(desk.db, desk.config, as_journalist, "eve", is_admin=True)
    # The admin's key pair under another account's id proves nothing either.
    forged = Admin(desk.row("dana").id, desk.opened.admin_keys, desk.opened.identity)
    with pytest.raises(NotAllowed):
        add_journalist(desk.db, desk.config, forged, "eve", is_admin=True)


# --- first login ------------------------------------------------------------------------


def test_after_first_login_the_temporary_passphrase_and_key_open_nothing(desk: Desk) -> None:
    creds = desk.add("aigerim")
    temporary_key_id = desk.row("aigerim").key_id
    ok = desk.login("aigerim", creds.passphrase, creds.totp_secret)
    assert ok is not None
    temporary = keypair_from_seed(Role.JOURNALIST, ok.key_seed)
    assert temporary.key_id == temporary_key_id
    done = complete_first_login(
        desk.db, desk.config, ok.journalist_id, creds.passphrase, desk.clock.now, gate=desk.gate
    )
    desk.db.commit()
    assert done is not None
    assert done.passphrase != creds.passphrase
    assert len(done.passphrase.split()) == 7
    assert done.passphrase not in repr(done)
    assert not done.confirmed
    # The temporary key: no entry, no grant, opens no grant; its session is gone.
    desk.opens_nothing(temporary)
    at = desk.clock.next()
    assert sessions.load(desk.db, sessions.JOURNALIST, ok.cookie, at) is None
    # The temporary passphrase no longer logs in (and counts as a failure); the new one does.
    assert desk.login("aigerim", creds.passphrase, creds.totp_secret) is None
    assert desk.row("aigerim").failed_login_count == 1
    again = desk.login("aigerim", done.passphrase, creds.totp_secret)
    assert again is not None
    assert again.key_seed == done.login.key_seed
    assert again.key_seed != ok.key_seed
    # A second first login has nothing left to do with the temporary passphrase.
    assert (
        complete_first_login(
            desk.db, desk.config, again.journalist_id, creds.passphrase, at, gate=desk.gate
        )
        is None
    )
    with pytest.raises(ValueError, match="temporary"):
        complete_first_login(
            desk.db, desk.config, again.journalist_id, done.passphrase, at, gate=desk.gate
        )
    desk.db.rollback()
    assert desk.events()[-1] == ("aigerim", "journalist.first_login", {"username": "aigerim"})


def test_a_key_awaiting_confirmation_has_no_entry_no_grants_and_sees_nothing(desk: Desk) -> None:
    creds = desk.add("aigerim")
    done = desk.first_login(creds)
    row = desk.row("aigerim")
    assert state_of(row) == AccountState.AWAITING_CONFIRMATION
    assert (row.key_id, row.temporary_key, row.must_change_passphrase) == (None, False, False)
    pending = keypair_from_seed(Role.JOURNALIST, done.login.key_seed)
    assert (row.pending_x25519, row.pending_ed25519) == (
        pending.public.x25519,
        pending.public.ed25519,
    )
    fingerprint = pending_fingerprint(desk.db, row.id, done.login.key_seed)
    assert fingerprint == done.fingerprint == pending.public.fingerprint
    # Shown from the session's seed: a seed that is not the pending key's is a fault.
    with pytest.raises(Rejected, match=r"^journalist\.pending"):
        pending_fingerprint(desk.db, row.id, new_seed())
    # Nothing is sealed to an unverified key (DESIGN invariant 7): no entry, no grant.
    desk.opens_nothing(pending)
    # The new session holds the new seed; a fresh login gets one too, flagged as waiting.
    opened = sessions.load(desk.db, sessions.JOURNALIST, done.login.cookie, desk.clock.now)
    assert opened is not None
    assert opened.key_seed == done.login.key_seed
    assert done.login.awaiting_confirmation
    ok = desk.login("aigerim", done.passphrase, creds.totp_secret)
    assert ok is not None
    assert (ok.awaiting_confirmation, ok.must_change_passphrase, ok.first_login) == (
        True,
        False,
        False,
    )
    # It can write nothing either.
    with pytest.raises(Rejected, match=r"^note\.author"):
        conversations.add_note(
            desk.db, desk.store, desk.opened.identity, row, pending, desk.source_id, "hi"
        )
    admin_seed = new_seed()
    assert pending_fingerprint(desk.db, desk.opened.admin.id, admin_seed) is None


def test_confirmation_refuses_a_wrong_fingerprint_then_grants_every_non_retired_key(
    desk: Desk,
) -> None:
    identity, identity_keys = desk.opened.identity, desk.opened.identity_keys
    admin_entry = directory.entry(desk.db, identity, desk.opened.admin_keys.key_id)
    # A retiring newsroom key (granted to the admin) and a retired one (granted to no one).
    for status in (Status.RETIRING, Status.RETIRED):
        seed = new_seed()
        keys = keypair_from_seed(Role.NEWSROOM, seed)
        keyring.sign_into_directory(desk.db, identity_keys, keys.public, status)
        desk.db.add(NewsroomKey(key_id=keys.key_id))
        if status == Status.RETIRING:
            keyring.grant(desk.db, keys, seed, admin_entry)
    desk.db.commit()
    creds = desk.add("aigerim")
    done = desk.first_login(creds)
    reader = keypair_from_seed(Role.JOURNALIST, done.login.key_seed)
    wrong = done.fingerprint[:-1] + ("0" if done.fingerprint[-1] != "0" else "1")
    with pytest.raises(FingerprintMismatch):
        confirm_pending_key(desk.db, desk.admin, "aigerim", wrong)
    with pytest.raises(FingerprintMismatch):
        confirm_pending_key(desk.db, desk.admin, "aigerim", done.fingerprint[:-5])
    desk.db.rollback()
    assert state_of(desk.row("aigerim")) == AccountState.AWAITING_CONFIRMATION
    # Typed without spaces, in lower case: the same fingerprint.
    typed = done.fingerprint.replace(" ", "").lower()
    assert confirm_pending_key(desk.db, desk.admin, "aigerim", typed) == done.fingerprint
    desk.db.commit()
    row = desk.row("aigerim")
    assert state_of(row) == AccountState.ACTIVE
    assert row.key_id == reader.key_id
    assert (row.pending_x25519, row.pending_ed25519) == (None, None)
    entry = directory.entry(desk.db, identity, reader.key_id)
    assert entry.subject_id == row.public_id
    assert desk.granted_roles(reader.key_id) == {
        Role.NEWSROOM: _live_newsroom(desk),
        Role.METADATA: {tagging.metadata_key_id(desk.db)},
    }
    assert len(_live_newsroom(desk)) == 2
    # The session made at first login now reads, with the same seed.
    (note,) = desk.view(reader)
    assert (note.text, note.verified) == ("call the lawyer", True)
    assert tagging.open_metadata_keys(desk.db, identity, reader, is_admin=False) is not None
    assert desk.events()[-1] == (
        "admin",
        "journalist.key_confirmed",
        {"username": "aigerim", "key": reader.public.short_id},
    )
    with pytest.raises(NotAllowed, match="awaiting"):
        confirm_pending_key(desk.db, desk.admin, "aigerim", done.fingerprint)


def test_an_admins_first_login_signs_and_grants_its_own_new_key(desk: Desk) -> None:
    creds = desk.add("bek", is_admin=True)
    ok = desk.login("bek", creds.passphrase, creds.totp_secret)
    assert ok is not None
    temporary = keypair_from_seed(Role.JOURNALIST, ok.key_seed)
    done = complete_first_login(
        desk.db, desk.config, ok.journalist_id, creds.passphrase, desk.clock.now, gate=desk.gate
    )
    desk.db.commit()
    assert done is not None
    assert done.confirmed
    assert not done.login.awaiting_confirmation
    new = keypair_from_seed(Role.JOURNALIST, done.login.key_seed)
    row = desk.row("bek")
    assert state_of(row) == AccountState.ACTIVE
    assert (row.key_id, row.pending_x25519) == (new.key_id, None)
    assert desk.granted_roles(new.key_id) == {
        Role.IDENTITY: {desk.opened.identity.key_id},
        Role.NEWSROOM: {desk.opened.newsroom.key_id},
        Role.METADATA: {tagging.metadata_key_id(desk.db)},
    }
    desk.opens_nothing(temporary)
    (note,) = desk.view(new)
    assert note.text == "call the lawyer"
    # The new admin can act as one at once.
    bek = Admin(row.id, new, desk.opened.identity)
    assert add_journalist(desk.db, desk.config, bek, "dana", is_admin=False).username == "dana"
    desk.db.commit()
    assert desk.events()[-3:] == [
        ("bek", "journalist.first_login", {"username": "bek"}),
        ("bek", "journalist.key_confirmed", {"username": "bek", "key": new.public.short_id}),
        ("bek", "journalist.add", {"username": "dana", "admin": False}),
    ]


def test_a_temporary_key_cannot_just_change_its_passphrase(desk: Desk) -> None:
    creds = desk.add("aigerim")
    row = desk.row("aigerim")
    before = (row.verifier, row.key_id)
    now = desk.clock.next()
    with pytest.raises(FirstLoginRequired):
        change_passphrase(
            desk.db, desk.config, row.id, creds.passphrase, now, gate=desk.gate, keep_cookie=None
        )
    desk.db.rollback()
    row = desk.row("aigerim")
    assert (row.verifier, row.key_id) == before
    # A wrong passphrase is a counted failure, as on the account page.
    wrong = generate_passphrase()
    assert complete_first_login(desk.db, desk.config, row.id, wrong, now, gate=desk.gate) is None
    desk.db.commit()
    assert desk.row("aigerim").failed_login_count == 1
    # After the first login the account changes its passphrase as any other.
    done = desk.first_login(creds)
    new = change_passphrase(
        desk.db, desk.config, row.id, done.passphrase, now, gate=desk.gate, keep_cookie=None
    )
    desk.db.commit()
    assert new is not None
    assert desk.login("aigerim", new, creds.totp_secret) is not None


# --- reset ------------------------------------------------------------------------------


def test_reset_destroys_the_old_key_and_issues_new_temporary_credentials(desk: Desk) -> None:
    creds, passphrase, old = desk.confirmed("aigerim")
    ok = desk.login("aigerim", passphrase, creds.totp_secret)
    assert ok is not None
    note = conversations.add_note(
        desk.db, desk.store, desk.opened.identity, desk.row("aigerim"), old, desk.source_id, "mine"
    )
    desk.db.commit()
    row = desk.row("aigerim")
    row.failed_login_count = 5
    row.locked_until = desk.clock.now + timedelta(hours=1)
    desk.db.commit()
    fresh = reset(desk.db, desk.config, desk.admin, "aigerim")
    desk.db.commit()
    assert (fresh.passphrase, fresh.totp_secret) != (passphrase, creds.totp_secret)
    desk.opens_nothing(old)
    assert _session_count(desk.db, row.id) == 0
    row = desk.row("aigerim")
    assert state_of(row) == AccountState.FIRST_LOGIN
    assert (row.failed_login_count, row.locked_until, row.totp_last_step) == (0, None, None)
    assert desk.granted_roles(row.key_id) == {}
    assert desk.login("aigerim", passphrase, creds.totp_secret) is None
    assert desk.login("aigerim", fresh.passphrase, fresh.totp_secret) is not None
    # What the old key signed no longer verifies: its entry is gone (flagged, text withheld).
    views = {view.item_id: view for view in desk.view(desk.opened.admin_keys)}
    assert (views[note].author, views[note].verified, views[note].text) == (
        "aigerim",
        False,
        None,
    )
    assert desk.events()[-1] == ("admin", "journalist.reset", {"username": "aigerim"})


def test_reset_of_a_key_awaiting_confirmation_drops_it(desk: Desk) -> None:
    done = desk.first_login(desk.add("aigerim"))
    fresh = reset(desk.db, desk.config, desk.admin, "aigerim")
    desk.db.commit()
    row = desk.row("aigerim")
    assert (state_of(row), row.pending_x25519, row.pending_ed25519) == (
        AccountState.FIRST_LOGIN,
        None,
        None,
    )
    assert pending_fingerprint(desk.db, row.id, done.login.key_seed) is None
    assert desk.login("aigerim", done.passphrase, fresh.totp_secret) is None
    assert desk.login("aigerim", fresh.passphrase, fresh.totp_secret) is not None


# --- role -------------------------------------------------------------------------------


def test_role_change_grants_and_revokes_the_identity_key(desk: Desk) -> None:
    creds, passphrase, keys = desk.confirmed("aigerim")
    identity = desk.opened.identity
    assert desk.login("aigerim", passphrase, creds.totp_secret) is not None
    assert set_role(desk.db, desk.admin, "aigerim", is_admin=True)
    desk.db.commit()
    assert Role.IDENTITY in desk.granted_roles(keys.key_id)
    seed = keyring.granted_seed(desk.db, identity, keys, Role.IDENTITY, identity.key_id)
    assert keypair_from_seed(Role.IDENTITY, seed).public == identity
    # Sessions carry their role: they end.
    assert _session_count(desk.db, desk.row("aigerim").id) == 0
    ok = desk.login("aigerim", passphrase, creds.totp_secret)
    assert ok is not None
    assert ok.role == "admin"
    assert not set_role(desk.db, desk.admin, "aigerim", is_admin=True)
    assert set_role(desk.db, desk.admin, "aigerim", is_admin=False)
    desk.db.commit()
    assert desk.granted_roles(keys.key_id) == {
        Role.NEWSROOM: {desk.opened.newsroom.key_id},
        Role.METADATA: {tagging.metadata_key_id(desk.db)},
    }
    with pytest.raises(Rejected, match=r"^grant\.missing"):
        keyring.granted_seed(desk.db, identity, keys, Role.IDENTITY, identity.key_id)
    assert [event for event in desk.events() if event[1] == "journalist.role"] == [
        ("admin", "journalist.role", {"username": "aigerim", "admin": True}),
        ("admin", "journalist.role", {"username": "aigerim", "admin": False}),
    ]


def test_role_change_of_a_temporary_key_gives_or_takes_all_its_grants(desk: Desk) -> None:
    desk.add("aigerim")
    key_id = desk.row("aigerim").key_id
    assert set_role(desk.db, desk.admin, "aigerim", is_admin=True)
    assert set(desk.granted_roles(key_id)) == {Role.IDENTITY, Role.NEWSROOM, Role.METADATA}
    assert set_role(desk.db, desk.admin, "aigerim", is_admin=False)
    assert desk.granted_roles(key_id) == {}


# --- activity ---------------------------------------------------------------------------


def test_deactivate_ends_sessions_and_grants_and_refuses_login(desk: Desk) -> None:
    creds, passphrase, keys = desk.confirmed("aigerim")
    assert desk.login("aigerim", passphrase, creds.totp_secret) is not None
    assert deactivate(desk.db, desk.admin, "aigerim")
    desk.db.commit()
    row = desk.row("aigerim")
    assert state_of(row) == AccountState.INACTIVE
    assert _session_count(desk.db, row.id) == 0
    assert desk.granted_roles(keys.key_id) == {}
    assert row.key_id == keys.key_id  # the key and its entry stay
    assert desk.login("aigerim", passphrase, creds.totp_secret) is None
    assert desk.row("aigerim").failed_login_count == 0
    assert not deactivate(desk.db, desk.admin, "aigerim")
    assert activate(desk.db, desk.admin, "aigerim")
    desk.db.commit()
    assert set(desk.granted_roles(keys.key_id)) == {Role.NEWSROOM, Role.METADATA}
    assert not activate(desk.db, desk.admin, "aigerim")
    assert desk.login("aigerim", passphrase, creds.totp_secret) is not None
    (note,) = desk.view(keys)
    assert note.text == "call the lawyer"
    assert [event[1] for event in desk.events()][-2:] == [
        "journalist.deactivate",
        "journalist.activate",
    ]


# --- removal ----------------------------------------------------------------------------


def test_removed_journalist_leaves_no_key_entry_grant_or_session(desk: Desk) -> None:
    creds, passphrase, keys = desk.confirmed("aigerim")
    ok = desk.login("aigerim", passphrase, creds.totp_secret)
    assert ok is not None
    # A copy of the unlocked seed, as a journalist's compromised laptop would keep it.
    old_seed = ok.key_seed
    row = desk.row("aigerim")
    identity = desk.opened.identity
    reply = conversations.add_reply(
        desk.db, desk.store, identity, row, keys, desk.source_id, "thank you"
    )
    note = conversations.add_note(desk.db, desk.store, identity, row, keys, desk.source_id, "n")
    triage.set_assignee(desk.db, [desk.source_id], row.public_id)
    triage.mark_read(desk.db, row.id, [desk.source_id])
    desk.db.commit()
    remove(desk.db, desk.admin, "aigerim")
    desk.db.commit()
    # Grants, key, directory entry and sessions are gone; the old seed opens no grant.
    assert desk.db.get(DirectoryEntry, keys.key_id) is None
    assert desk.db.scalar(select(func.count()).where(Grant.grantee_key_id == keys.key_id)) == 0
    assert _session_count(desk.db, row.id) == 0
    old = keypair_from_seed(Role.JOURNALIST, old_seed)
    desk.opens_nothing(old)
    for role, key_id in (
        (Role.NEWSROOM, desk.opened.newsroom.key_id),
        (Role.METADATA, tagging.metadata_key_id(desk.db)),
    ):
        assert key_id is not None
        with pytest.raises(Rejected, match=r"^grant\.missing"):
            keyring.granted_seed(desk.db, identity, old, role, key_id)
    # The row stays as a tombstone holding no secret, and cannot log in.
    row = desk.row("aigerim")
    assert state_of(row) == AccountState.REMOVED
    assert (row.key_id, row.seed_box, row.totp_box, row.pending_x25519) == (None,) * 4
    assert (row.is_active, row.is_admin, row.verifier) == (False, False, bytes(32))
    assert row.removed_on is not None
    assert desk.login("aigerim", passphrase, creds.totp_secret) is None
    assert desk.db.scalar(select(Source.assignee_id)) is None
    assert desk.db.scalar(select(func.count()).select_from(ReadMarker)) == 0
    # Their reply and note stay, credited to them but flagged: the entry is gone.
    views = {view.item_id: view for view in desk.view(desk.opened.admin_keys)}
    for item_id in (reply, note):
        assert (views[item_id].author, views[item_id].verified, views[item_id].text) == (
            "aigerim",
            False,
            None,
        )
        assert not views[item_id].damaged
    assert views[desk.note_id].verified
    # The audit log keeps naming them as the actor of what they did.
    actors = {(actor, action) for actor, action, _ in desk.events()}
    assert ("aigerim", "journalist.first_login") in actors
    assert desk.events()[-1] == ("admin", "journalist.remove", {"username": "aigerim"})
    # Gone for every other action, and the name stays taken.
    for action in (
        lambda: remove(desk.db, desk.admin, "aigerim"),
        lambda: activate(desk.db, desk.admin, "aigerim"),
        lambda: reset(desk.db, desk.config, desk.admin, "aigerim"),
        lambda: set_role(desk.db, desk.admin, "aigerim", is_admin=True),
    ):
        with pytest.raises(UnknownJournalist):
            action()
    with pytest.raises(UsernameTaken):
        desk.add("aigerim")


def test_removing_an_account_awaiting_confirmation(desk: Desk) -> None:
    done = desk.first_login(desk.add("aigerim"))
    remove(desk.db, desk.admin, "aigerim")
    desk.db.commit()
    assert pending_fingerprint(desk.db, desk.row("aigerim").id, done.login.key_seed) is None
    desk.opens_nothing(keypair_from_seed(Role.JOURNALIST, done.login.key_seed))


# --- rules ------------------------------------------------------------------------------


def test_an_admin_does_not_act_on_their_own_account(desk: Desk) -> None:
    for action in (
        lambda: remove(desk.db, desk.admin, "admin"),
        lambda: deactivate(desk.db, desk.admin, "admin"),
        lambda: set_role(desk.db, desk.admin, "admin", is_admin=False),
        lambda: reset(desk.db, desk.config, desk.admin, "admin"),
    ):
        with pytest.raises(NotAllowed, match="own account"):
            action()
    with pytest.raises(UnknownJournalist):
        deactivate(desk.db, desk.admin, "nobody")
    desk.db.rollback()
    assert state_of(desk.row("admin")) == AccountState.ACTIVE


def test_list_shows_every_state_with_its_fingerprint(desk: Desk) -> None:
    desk.add("first")
    waiting = desk.first_login(desk.add("waiting"))
    _, _, active_keys = desk.confirmed("active")
    desk.add("inactive")
    deactivate(desk.db, desk.admin, "inactive")
    desk.add("removed")
    remove(desk.db, desk.admin, "removed")
    desk.db.commit()
    listed = {
        info.username: (info.is_admin, info.state, info.fingerprint)
        for info in list_journalists(desk.db, desk.opened.identity)
    }

    def fingerprint_of(username: str) -> str:
        key_id = desk.row(username).key_id
        assert key_id is not None
        return directory.entry(desk.db, desk.opened.identity, key_id).public.fingerprint

    assert listed == {
        "active": (False, AccountState.ACTIVE, active_keys.public.fingerprint),
        "admin": (True, AccountState.ACTIVE, desk.opened.admin_keys.public.fingerprint),
        "first": (False, AccountState.FIRST_LOGIN, fingerprint_of("first")),
        "inactive": (False, AccountState.INACTIVE, fingerprint_of("inactive")),
        "removed": (False, AccountState.REMOVED, None),
        "waiting": (False, AccountState.AWAITING_CONFIRMATION, waiting.fingerprint),
    }
    names = [
        info.username
        for info in list_journalists(desk.db, desk.opened.identity, include_removed=False)
    ]
    assert "removed" not in names


def test_a_removed_journalists_old_keys_open_nothing_sent_after_the_rotation(desk: Desk) -> None:
    """Issue #5: a copy of a removed journalist's unlocked seed, even with a copy of the
    grants it held (an old database backup), opens nothing wrapped after the rotation."""
    _creds, _passphrase, keys = desk.confirmed("aigerim")
    identity = desk.opened.identity
    copied_newsroom_seed = keyring.granted_seed(
        desk.db, identity, keys, Role.NEWSROOM, desk.opened.newsroom.key_id
    )
    old_newsroom = keypair_from_seed(Role.NEWSROOM, copied_newsroom_seed)
    remove(desk.db, desk.admin, "aigerim")
    rotated = rotation.rotate(
        desk.db,
        identity,
        desk.opened.admin_keys,
        desk.opened.admin.id,
        datetime.now(UTC),
        desk.config.key_grace_seconds,
    )
    desk.db.commit()
    receipt = accept_server_submission(
        desk.db, desk.store, identity, desk.source_id, "after the rotation", [], LIMITS
    )
    desk.db.commit()
    (item_id,) = receipt.item_ids
    wraps = desk.db.execute(
        select(Wrap.key_id, Wrap.wrap)
        .join(Item, Item.id == Wrap.item_id)
        .where(Item.public_id == item_id)
    ).all()
    assert [key_id for key_id, _ in wraps] == [rotated.current.key_id]
    for _, wrap in wraps:
        for held in (old_newsroom, keys):
            with pytest.raises(Rejected):
                envelope.unwrap_key(wrap, held.x25519_private, held.x25519_public)
    with pytest.raises(Rejected, match=r"^grant\.missing"):
        keyring.granted_seed(desk.db, identity, keys, Role.NEWSROOM, rotated.current.key_id)
    # The admin reads it.
    assert any(view.text == "after the rotation" for view in desk.view(desk.opened.admin_keys))


def test_a_metadata_key_made_later_follows_the_same_entitlements(desk: Desk) -> None:
    """An instance upgraded from before tags makes its metadata key at an admin's first
    use: it is granted like any key (tipbox.entitlements), so to a confirmed journalist but
    not to one still on an admin's temporary key."""
    _creds, _passphrase, confirmed = desk.confirmed("aigerim")
    desk.add("bolat")
    temporary_key = desk.row("bolat").key_id
    old = tagging.metadata_key_id(desk.db)
    desk.db.query(Grant).filter(Grant.key_id == old).delete()
    desk.db.query(DirectoryEntry).filter(DirectoryEntry.key_id == old).delete()
    desk.db.commit()
    made = tagging.open_metadata_keys(
        desk.db, desk.opened.identity, desk.opened.admin_keys, is_admin=True
    )
    assert made is not None
    desk.db.commit()
    holders = set(desk.db.scalars(select(Grant.grantee_key_id).where(Grant.key_id == made.key_id)))
    assert confirmed.key_id in holders
    assert desk.opened.admin_keys.key_id in holders
    assert temporary_key not in holders
