"""The newsroom key's lifecycle (``tipbox.rotation``): rotate, re-wrap, sweep, retire.

Issue #5's acceptance, each a test, on SQLite and PostgreSQL: items under N1; rotate to N2;
new items use N2; an upload begun under N1 that commits in the grace period is readable;
every item stays readable by every active journalist; re-wrap moves every wrap to N2;
retire N1; nothing unreadable, nothing wrapped twice; a commit to a retired key is refused.
And the lock: a final sweep waits for a commit in flight, a commit waits for a retirement.
Real databases and blob store, real threads; nothing mocked.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tipbox import audit, conversations, directory, instance, keyring, rotation, sources, tagging
from tipbox.accounts import Credentials, create_journalist, unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status
from tipbox.crypto.envelope import Kind
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.db import transaction
from tipbox.models import DirectoryEntry, Grant, Item, Journalist, NewsroomKey, Wrap, new_public_id
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import (
    CiphertextUpload,
    EncryptingUpload,
    Limits,
    Receipt,
    SubmissionRejected,
    accept_browser_submission,
    accept_server_submission,
    max_blob_bytes,
)

MIB = 1 << 20
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=MIB)
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Reader:
    """A journalist who reads: the account row and the unlocked key pair."""

    row: Journalist
    keys: KeyPair


@dataclass(frozen=True)
class BrowserPost:
    """A browser-made message, sealed to one newsroom key before it is posted."""

    item_id: bytes
    sealed: envelope.SealedItem


@dataclass
class Desk:
    """An instance with a recovery key, its admin, a second journalist (bob), an inactive
    one (carol), one on a temporary key (dave), and one source."""

    db: Session
    config: Config
    store: FilesystemBlobStore
    identity: PublicKeys
    admin: Reader
    bob: Reader
    source_id: bytes
    admin_credentials: Credentials
    recovery_secret: str

    @property
    def limits(self) -> Limits:
        return replace(LIMITS, key_grace_seconds=self.config.key_grace_seconds)

    def current(self) -> PublicKeys:
        return rotation.current_key(self.db, self.identity).public

    def submit(self, message: str, files: dict[str, bytes] | None = None) -> list[bytes]:
        uploads = []
        for name, content in (files or {}).items():
            upload = EncryptingUpload(self.store, self.source_id, name, "text/plain", MIB)
            upload.write(content)
            upload.finish()
            uploads.append(upload)
        receipt = accept_server_submission(
            self.db, self.store, self.identity, self.source_id, message, uploads, self.limits
        )
        self.db.commit()
        return list(receipt.item_ids)

    def write(self, kind: Kind, text: str) -> bytes:
        add = conversations.add_reply if kind == Kind.REPLY else conversations.add_note
        item_id = add(
            self.db,
            self.store,
            self.identity,
            self.admin.row,
            self.admin.keys,
            self.source_id,
            text,
        )
        self.db.commit()
        return item_id

    def browser_post(self, key: PublicKeys, text: str) -> BrowserPost:
        """A message the browser sealed to ``key`` (from the form it was given)."""
        item_id = new_public_id()
        sealed = envelope.seal_text(
            Kind.MESSAGE, self.source_id, item_id, text, {key.key_id: key.x25519}
        )
        return BrowserPost(item_id, sealed)

    def post(self, post: BrowserPost, session: Session | None = None) -> Receipt:
        """Post ``post`` in ``session`` (the desk's by default); the caller commits."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode("ascii")

        ((key_id, wrap),) = post.sealed.wraps.items()
        manifest = {
            "version": 1,
            "source_id": self.source_id.hex(),
            "items": [
                {
                    "item_id": post.item_id.hex(),
                    "kind": int(Kind.MESSAGE),
                    "key_id": key_id.hex(),
                    "sealed_meta": b64(post.sealed.sealed_meta),
                    "wrap": b64(wrap),
                    "part": "blob0",
                }
            ],
        }
        upload = CiphertextUpload(self.store, max_blob_bytes(self.limits))
        upload.write(post.sealed.blob)
        upload.finish()
        return accept_browser_submission(
            session or self.db,
            self.store,
            self.identity,
            self.source_id,
            json.dumps(manifest),
            {"blob0": upload},
            [post.item_id],
            self.limits,
        )

    def rotate(self) -> rotation.Rotated:
        rotated = rotation.rotate(
            self.db,
            self.identity,
            self.admin.keys,
            self.admin.row.id,
            datetime.now(UTC),
            self.config.key_grace_seconds,
        )
        self.db.commit()
        return rotated

    def rewrap(self, limit: int = 2) -> Counter[bytes]:
        """Every batch, one transaction each, as ``tipbox keys rewrap`` runs them."""
        moved: Counter[bytes] = Counter()
        after = 0
        while True:
            batch = rotation.rewrap_batch(
                self.db, self.identity, self.admin.keys, after=after, limit=limit
            )
            self.db.commit()
            moved.update(batch.moved)
            after = batch.last_id
            if batch.seen < limit:
                return moved

    def after_grace(self, rotated: rotation.Rotated) -> datetime:
        return rotated.commits_until + SECOND

    def finish(self, now: datetime, moved: Counter[bytes] | None = None) -> list[rotation.Swept]:
        swept = rotation.finish_rewrap(
            self.db,
            self.identity,
            self.admin.keys,
            self.admin.row.id,
            moved or Counter(),
            now,
            self.config.key_grace_seconds,
        )
        self.db.commit()
        return swept

    def retire(self, key_id: bytes, now: datetime, session: Session | None = None) -> PublicKeys:
        return rotation.retire(
            session or self.db,
            self.identity,
            self.admin.keys,
            self.admin.row.id,
            key_id,
            now,
            self.config.key_grace_seconds,
        )

    def read(self, reader: Reader) -> list[str]:
        """Every item as ``reader`` sees it: text, or a file's name and content. Fails on
        anything damaged or unverified."""
        self.db.rollback()
        shown = []
        for view in conversations.conversation(
            self.db, self.store, self.identity, reader.keys, self.source_id
        ):
            assert not view.damaged, view
            assert view.verified is not False, view
            if view.file is not None:
                download = conversations.open_download(
                    self.db, self.store, self.identity, reader.keys, view.item_id
                )
                shown.append(f"{download.filename}={b''.join(download.chunks()).decode()}")
            else:
                assert view.text is not None
                shown.append(view.text)
        return shown

    def newsroom_wraps(self) -> dict[bytes, list[bytes]]:
        """Item public id -> the key ids of its wraps to newsroom keys."""
        self.db.rollback()
        newsroom = select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.NEWSROOM))
        found: dict[bytes, list[bytes]] = {
            item_id: [] for item_id in self.db.scalars(select(Item.public_id))
        }
        for item_id, key_id in self.db.execute(
            select(Item.public_id, Wrap.key_id)
            .join(Wrap, Wrap.item_id == Item.id)
            .where(Wrap.key_id.in_(newsroom))
        ):
            found[item_id].append(key_id)
        return found

    def grantees_of(self, key_id: bytes) -> set[bytes]:
        self.db.rollback()
        return set(self.db.scalars(select(Grant.grantee_key_id).where(Grant.key_id == key_id)))

    def entry_status(self, key_id: bytes) -> Status:
        self.db.rollback()
        return directory.entry(self.db, self.identity, key_id).status


def _journalist(
    db: Session, config: Config, identity_keys: KeyPair, name: str
) -> tuple[Journalist, KeyPair]:
    made = create_journalist(
        db,
        identity_keys,
        name,
        is_admin=False,
        cost=config.journalist_kdf,
        must_change_passphrase=False,
    )
    return made.row, made.keypair


def make_desk(db: Session, config: Config, store: FilesystemBlobStore) -> Desk:
    """Initialise an instance (recovery key made in place) and the people of ``Desk``."""
    result = instance.init_instance(
        db, config, name="Test", admin_username="admin", recovery_in_place=True
    )
    db.commit()
    assert result.recovery_secret is not None
    identity = directory.identity_public(db)
    admin_row = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
    admin_keys = unlock_journalist(db, identity, admin_row, result.admin.passphrase).keypair
    identity_keys = keyring.granted_keypair(
        db, identity, admin_keys, Role.IDENTITY, identity.key_id
    )
    newsroom_seed = keyring.granted_seed(
        db, identity, admin_keys, Role.NEWSROOM, result.newsroom.key_id
    )
    newsroom = keypair_from_seed(Role.NEWSROOM, newsroom_seed)
    bob_row, bob_keys = _journalist(db, config, identity_keys, "bob")
    keyring.grant(db, newsroom, newsroom_seed, directory.entry(db, identity, bob_keys.key_id))
    tagging.grant_metadata_key(db, identity, admin_keys, bob_keys.key_id)
    carol, _ = _journalist(db, config, identity_keys, "carol")
    carol.is_active = False
    dave, _ = _journalist(db, config, identity_keys, "dave")
    dave.temporary_key = True  # a journalist's temporary key holds no grant (journalists.py)
    source = sources.create_source(db)
    db.commit()
    return Desk(
        db,
        config,
        FilesystemBlobStore(config.blob_dir),
        identity,
        Reader(admin_row, admin_keys),
        Reader(bob_row, bob_keys),
        source.public_id,
        result.admin,
        result.recovery_secret,
    )


@pytest.fixture
def desk(db: Session, config: Config) -> Desk:
    return make_desk(db, config, FilesystemBlobStore(config.blob_dir))


def _key_ids(db: Session, *names: str) -> set[bytes]:
    rows = db.scalars(select(Journalist.key_id).where(Journalist.username.in_(names)))
    return {key_id for key_id in rows if key_id is not None}


def _recovery_key_id(db: Session) -> bytes:
    return db.scalars(
        select(DirectoryEntry.key_id).where(DirectoryEntry.role == int(Role.RECOVERY))
    ).one()


def _items_under_n1(desk: Desk) -> list[str]:
    """A message and a file, a reply and a note, all wrapped to the first key."""
    desk.submit("the first tip", {"a.txt": b"first file"})
    desk.write(Kind.REPLY, "thanks, we read it")
    desk.write(Kind.NOTE, "call the ministry")
    return ["the first tip", "a.txt=first file", "thanks, we read it", "call the ministry"]


# --- rotate ---------------------------------------------------------------------------------


def test_rotate_makes_a_new_current_key_granted_to_every_entitled_key(desk: Desk) -> None:
    n1 = desk.current()
    rotated = desk.rotate()
    assert rotated.previous == n1
    n2 = rotated.current
    assert n2 != n1
    assert desk.current() == n2
    assert desk.entry_status(n1.key_id) == Status.RETIRING
    assert desk.entry_status(n2.key_id) == Status.CURRENT
    lifecycle = desk.db.get(NewsroomKey, n1.key_id)
    assert lifecycle is not None
    assert lifecycle.retiring_since is not None
    grace = timedelta(seconds=desk.config.key_grace_seconds)
    assert rotated.commits_until == lifecycle.retiring_since + grace
    # The admin, bob and the recovery key; not inactive carol, nor dave's temporary key.
    expected = _key_ids(desk.db, "admin", "bob") | {_recovery_key_id(desk.db)}
    assert desk.grantees_of(n2.key_id) == expected
    assert rotated.grantees == 3
    # Every grant opens for its grantee, and gives the new key.
    for reader in (desk.admin, desk.bob):
        seed = keyring.granted_seed(desk.db, desk.identity, reader.keys, Role.NEWSROOM, n2.key_id)
        assert keypair_from_seed(Role.NEWSROOM, seed).public == n2
    (event,) = audit.events(desk.db, action_prefix="key.rotate")
    assert event.detail == {"key": n2.short_id, "previous": n1.short_id}
    assert event.actor == "admin"


def test_new_items_use_the_new_key(desk: Desk) -> None:
    _items_under_n1(desk)
    n1 = desk.current()
    n2 = desk.rotate().current
    later = desk.submit("after the rotation", {"b.txt": b"second file"})
    later += [desk.write(Kind.REPLY, "a new reply"), desk.write(Kind.NOTE, "a new note")]
    wraps = desk.newsroom_wraps()
    for item_id in later:
        assert wraps[item_id] == [n2.key_id]
    assert sum(wraps[item_id] == [n1.key_id] for item_id in wraps) == 4
    # A browser form rendered now gets N2, and a post sealed to it is accepted.
    desk.post(desk.browser_post(n2, "browser, new key"))
    desk.db.commit()
    assert desk.read(desk.admin)[-1] == "browser, new key"


def test_an_upload_begun_under_the_old_key_commits_in_the_grace_period(desk: Desk) -> None:
    n1 = desk.current()
    begun = desk.browser_post(n1, "sealed to N1 before the rotation")
    desk.rotate()
    receipt = desk.post(begun)
    desk.db.commit()
    assert desk.newsroom_wraps()[receipt.item_ids[0]] == [n1.key_id]
    for reader in (desk.admin, desk.bob):
        assert desk.read(reader) == ["sealed to N1 before the rotation"]


def test_every_item_stays_readable_by_every_active_journalist(desk: Desk) -> None:
    expected = _items_under_n1(desk)
    n1 = desk.current()
    begun = desk.browser_post(n1, "in flight")
    assert desk.read(desk.admin) == desk.read(desk.bob) == expected
    rotated = desk.rotate()
    desk.post(begun)
    desk.db.commit()
    expected += ["in flight"]
    expected += ["after"]
    desk.submit("after")
    assert desk.read(desk.admin) == desk.read(desk.bob) == expected
    moved = desk.rewrap()
    assert desk.read(desk.admin) == desk.read(desk.bob) == expected
    desk.finish(desk.after_grace(rotated), moved)
    desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.commit()
    assert desk.read(desk.admin) == desk.read(desk.bob) == expected


# --- re-wrap --------------------------------------------------------------------------------


def test_rewrap_moves_every_wrap_to_the_new_key_and_wraps_nothing_twice(desk: Desk) -> None:
    _items_under_n1(desk)
    desk.submit("second", {"c.txt": b"c", "d.txt": b"d"})
    n1 = desk.current()
    source_wraps_before = _source_wraps(desk.db)
    n2 = desk.rotate().current
    assert all(keys == [n1.key_id] for keys in desk.newsroom_wraps().values())
    # Resumable: one batch, then the rest in later transactions, from where it stopped.
    first = rotation.rewrap_batch(desk.db, desk.identity, desk.admin.keys, limit=3)
    desk.db.commit()
    assert (first.seen, first.moved_total) == (3, 3)
    wraps = desk.newsroom_wraps()
    assert sum(keys == [n2.key_id] for keys in wraps.values()) == 3
    assert all(len(keys) == 1 for keys in wraps.values())
    moved = desk.rewrap(limit=2)
    assert moved == Counter({n1.key_id: len(wraps) - 3})
    wraps = desk.newsroom_wraps()
    assert all(keys == [n2.key_id] for keys in wraps.values())
    # The source's own wrap of the reply is not a newsroom key's: untouched.
    assert _source_wraps(desk.db) == source_wraps_before
    assert _duplicate_wraps(desk.db) == 0
    assert rotation.wraps_to_move(desk.db, desk.identity) == 0
    assert desk.rewrap() == Counter()


def _source_wraps(db: Session) -> list[tuple[int, bytes, bytes]]:
    db.rollback()
    keys = select(DirectoryEntry.key_id)
    rows = db.execute(select(Wrap.item_id, Wrap.key_id, Wrap.wrap).where(Wrap.key_id.not_in(keys)))
    return sorted((item_id, key_id, wrap) for item_id, key_id, wrap in rows)


def _duplicate_wraps(db: Session) -> int:
    """(item, key) pairs with more than one wrap (the unique constraint forbids them too)."""
    pairs = (
        select(Wrap.item_id, Wrap.key_id)
        .group_by(Wrap.item_id, Wrap.key_id)
        .having(func.count() > 1)
        .subquery()
    )
    return int(db.scalar(select(func.count()).select_from(pairs)) or 0)


def test_the_final_sweep_moves_a_commit_made_after_the_batches(desk: Desk) -> None:
    n1 = desk.current()
    desk.submit("before")
    late = desk.browser_post(n1, "late, in the grace period")
    rotated = desk.rotate()
    moved = desk.rewrap()
    receipt = desk.post(late)
    desk.db.commit()
    assert desk.newsroom_wraps()[receipt.item_ids[0]] == [n1.key_id]
    # During the grace period the sweep does not run: commits may still come.
    (waiting,) = desk.finish(datetime.now(UTC), moved)
    assert (waiting.swept, waiting.left, waiting.moved) == (False, 1, 1)
    (swept,) = desk.finish(desk.after_grace(rotated))
    assert (swept.swept, swept.left, swept.moved) == (True, 0, 1)
    assert desk.newsroom_wraps()[receipt.item_ids[0]] == [rotated.current.key_id]
    events = audit.events(desk.db, action_prefix="key.rewrap")
    assert sorted(event.detail["wraps"] for event in events) == [1, 1]


def test_a_wrap_that_does_not_open_is_left_and_retire_refuses(desk: Desk) -> None:
    desk.submit("one")
    desk.submit("two")
    n1 = desk.current()
    rotated = desk.rotate()
    broken = envelope.wrap_key(envelope.new_content_key(), rotated.current.x25519)
    first = desk.db.scalars(select(Wrap.id).where(Wrap.key_id == n1.key_id)).first()
    desk.db.execute(update(Wrap).where(Wrap.id == first).values(wrap=broken))
    desk.db.commit()
    batch = rotation.rewrap_batch(desk.db, desk.identity, desk.admin.keys, limit=10)
    desk.db.commit()
    assert (batch.seen, batch.moved_total, batch.unopened) == (2, 1, 1)
    later = desk.after_grace(rotated)
    (swept,) = desk.finish(later)
    assert (swept.swept, swept.left) == (True, 1)
    with pytest.raises(rotation.NotReady, match="1 items are still wrapped"):
        desk.retire(n1.key_id, later)
    desk.db.rollback()


# --- retire ---------------------------------------------------------------------------------


def test_retire_refuses_during_the_grace_period_and_while_wraps_remain(desk: Desk) -> None:
    desk.submit("one")
    n1 = desk.current()
    rotated = desk.rotate()
    with pytest.raises(rotation.NotReady, match="still accepts commits until"):
        desk.retire(n1.key_id, datetime.now(UTC))
    desk.db.rollback()
    with pytest.raises(rotation.NotReady, match="1 items are still wrapped"):
        desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.rollback()
    with pytest.raises(rotation.NotReady, match="not a retiring"):
        desk.retire(rotated.current.key_id, desk.after_grace(rotated))
    desk.db.rollback()
    assert desk.entry_status(n1.key_id) == Status.RETIRING
    assert desk.grantees_of(n1.key_id)


def test_retire_signs_the_key_retired_and_deletes_its_grants(desk: Desk) -> None:
    _items_under_n1(desk)
    n1 = desk.current()
    rotated = desk.rotate()
    desk.finish(desk.after_grace(rotated), desk.rewrap())
    assert desk.grantees_of(n1.key_id)
    retired = desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.commit()
    assert retired == n1
    assert desk.entry_status(n1.key_id) == Status.RETIRED
    assert desk.grantees_of(n1.key_id) == set()
    lifecycle = desk.db.get(NewsroomKey, n1.key_id)
    assert lifecycle is not None
    assert lifecycle.retired_on is not None
    assert all(keys == [rotated.current.key_id] for keys in desk.newsroom_wraps().values())
    (event,) = audit.events(desk.db, action_prefix="key.retire")
    assert event.detail == {"key": n1.short_id}
    with pytest.raises(rotation.NotReady, match="not a retiring"):
        desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.rollback()


def test_a_commit_to_a_retired_key_is_refused(desk: Desk) -> None:
    n1 = desk.current()
    stale = desk.browser_post(n1, "too late")
    rotated = desk.rotate()
    desk.finish(desk.after_grace(rotated), desk.rewrap())
    desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.commit()
    with pytest.raises(SubmissionRejected) as refused:
        desk.post(stale)
    assert refused.value.reason == "stale_key"
    desk.db.rollback()
    assert desk.read(desk.admin) == []


def test_the_key_report_counts_the_items_wrapped_to_each_key(desk: Desk) -> None:
    _items_under_n1(desk)
    n1 = desk.current()
    rotated = desk.rotate()
    desk.submit("new")
    report = {
        key.short_id: key
        for key in instance.key_report(
            desk.db, desk.config.keys_dir, grace_seconds=desk.config.key_grace_seconds
        )
    }
    old, new = report[n1.short_id], report[rotated.current.short_id]
    assert (old.status, old.wrapped_items, old.commits_until) == (
        Status.RETIRING,
        4,
        rotated.commits_until,
    )
    assert (new.status, new.wrapped_items, new.commits_until) == (Status.CURRENT, 1, None)
    assert old.key_id == n1.key_id
    assert old.created_on == new.created_on
    others = [key for key in report.values() if key.role != Role.NEWSROOM]
    assert {key.role for key in others} == {Role.IDENTITY, Role.RECOVERY, Role.METADATA}
    assert all(key.wrapped_items is None for key in others)


def test_two_rotations_rewrap_both_retiring_keys(desk: Desk) -> None:
    n1 = desk.current()
    desk.submit("under N1")
    desk.rotate()
    desk.submit("under N2")
    rotated = desk.rotate()
    moved = desk.rewrap()
    assert sum(moved.values()) == 2
    assert n1.key_id in moved
    assert all(keys == [rotated.current.key_id] for keys in desk.newsroom_wraps().values())
    later = desk.after_grace(rotated)
    for entry in rotation.retiring_keys(desk.db, desk.identity):
        desk.retire(entry.key_id, later)
    desk.db.commit()
    assert desk.read(desk.admin) == desk.read(desk.bob) == ["under N1", "under N2"]


# --- the lock: no commit slips past the final sweep -------------------------------------------


def _in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_the_final_sweep_waits_for_a_commit_in_flight(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    n1 = desk.current()
    in_flight = desk.browser_post(n1, "committed while the sweep waits")
    rotated = desk.rotate()
    receipt = desk.post(in_flight)  # checked and written, not yet committed

    def sweep() -> list[rotation.Swept]:
        with transaction(session_factory) as session:
            return rotation.finish_rewrap(
                session,
                desk.identity,
                desk.admin.keys,
                desk.admin.row.id,
                {},
                desk.after_grace(rotated),
                desk.config.key_grace_seconds,
            )

    thread, outcome = _in_thread(sweep)
    time.sleep(0.5)
    assert thread.is_alive(), outcome  # waiting for the submission's lock
    desk.db.commit()
    thread.join(30)
    assert "error" not in outcome, outcome
    (swept,) = outcome["value"]
    assert (swept.swept, swept.moved, swept.left) == (True, 1, 0)
    assert desk.newsroom_wraps()[receipt.item_ids[0]] == [rotated.current.key_id]
    desk.retire(n1.key_id, desk.after_grace(rotated))
    desk.db.commit()
    assert desk.read(desk.bob) == ["committed while the sweep waits"]


def test_a_commit_waits_for_a_retirement_and_is_then_refused(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    n1 = desk.current()
    waiting = desk.browser_post(n1, "posted while the key retires")
    rotated = desk.rotate()
    desk.retire(n1.key_id, desk.after_grace(rotated))  # holds the lock, not committed

    def post() -> Receipt:
        with transaction(session_factory) as session:
            return desk.post(waiting, session)

    thread, outcome = _in_thread(post)
    time.sleep(0.5)
    assert thread.is_alive(), outcome
    desk.db.commit()
    thread.join(30)
    error = outcome.get("error")
    assert isinstance(error, SubmissionRejected), outcome
    assert error.reason == "stale_key"
    assert desk.newsroom_wraps() == {}
