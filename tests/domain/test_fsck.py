"""``tipbox.fsck``: each finding made for real, found, repaired (or kept), on SQLite and
PostgreSQL, with a real blob store.

Blob files carry a fixed modification time, so their age is their inode change time (set
when they are written) and cannot be moved back: a finding's age is shown by checking at a
``now`` later than the write instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from tipbox import audit, conversations, directory, fsck, rotation
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind
from tipbox.crypto.keys import PublicKeys
from tipbox.fsck import FsckResult, Report
from tipbox.items import NewItem, source_for_update, store_items
from tipbox.models import AuditEvent, DirectoryEntry, Item, Source, Wrap, new_public_id
from tipbox.storage import FIXED_TIME, TEMP_PREFIX, FilesystemBlobStore
from tipbox.submissions import EncryptingUpload, Limits, accept_server_submission

from .opened import OpenedInstance, open_instance

HOUR = 3600.0
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1 << 20)


@dataclass
class Box:
    """An opened instance with a few real items, and the engine ``run_fsck`` takes."""

    db: Session
    engine: Engine
    config: Config
    store: FilesystemBlobStore
    opened: OpenedInstance

    @property
    def identity(self) -> PublicKeys:
        return self.opened.identity

    def submit(self, message: str, file: bytes | None = None) -> list[bytes]:
        uploads = []
        if file is not None:
            upload = EncryptingUpload(
                self.store, self.opened.source.public_id, "a.txt", "text/plain", 1 << 20
            )
            upload.write(file)
            upload.finish()
            uploads.append(upload)
        receipt = accept_server_submission(
            self.db,
            self.store,
            self.identity,
            self.opened.source.public_id,
            message,
            uploads,
            LIMITS,
        )
        self.db.commit()
        return list(receipt.item_ids)

    def check(self, *, min_age: float = HOUR, later: float = 0.0) -> Report:
        """A check as of ``later`` seconds from now."""
        self.db.rollback()
        report = fsck.check(
            self.db,
            self.store,
            self.identity,
            min_age_seconds=min_age,
            now=time.time() + later,
        )
        self.db.rollback()
        return report

    def run(self, *, repair: bool, unreadable: bool = False, later: float = 0.0) -> FsckResult:
        self.db.rollback()
        return fsck.run_fsck(
            self.engine,
            self.store,
            directory.identity_public,
            min_age_seconds=HOUR,
            repair_leftovers=repair,
            delete_unreadable=unreadable,
            now=time.time() + later,
        )

    def item(self, public_id: bytes) -> Item:
        self.db.rollback()
        return self.db.scalars(select(Item).where(Item.public_id == public_id)).one()

    def readable(self) -> dict[bytes, str]:
        """Every item the admin opens, as text or file content; fails on a damaged one."""
        self.db.rollback()
        shown = {}
        for view in conversations.conversation(
            self.db,
            self.store,
            self.identity,
            self.opened.admin_keys,
            self.opened.source.public_id,
        ):
            assert not view.damaged, view
            if view.file is not None:
                download = conversations.open_download(
                    self.db, self.store, self.identity, self.opened.admin_keys, view.item_id
                )
                shown[view.item_id] = b"".join(download.chunks()).decode()
            else:
                assert view.text is not None
                shown[view.item_id] = view.text
        self.db.rollback()
        return shown

    def fsck_events(self) -> list[dict[str, object]]:
        self.db.rollback()
        rows = self.db.scalars(select(AuditEvent).where(AuditEvent.action == "fsck.repair"))
        found = [dict(row.detail) for row in rows]
        self.db.rollback()
        return found


@pytest.fixture
def box(db: Session, engine: Engine, config: Config, blob_store: FilesystemBlobStore) -> Box:
    made = Box(db, engine, config, blob_store, open_instance(db, config))
    made.submit("first message", b"first file")
    conversations.add_reply(
        db,
        blob_store,
        made.identity,
        made.opened.admin,
        made.opened.admin_keys,
        made.opened.source.public_id,
        "a reply",
    )
    db.commit()
    return made


def _orphan(store: FilesystemBlobStore, content: bytes = b"ciphertext") -> str:
    blob_id = store.new_id()
    with store.writer(blob_id) as out:
        out.write(content)
    return blob_id


# --- a healthy instance -------------------------------------------------------------------


def test_a_healthy_instance_is_clean_and_a_repair_changes_nothing(box: Box) -> None:
    before = box.readable()
    report = box.check(later=10 * HOUR)
    assert report.clean
    assert (report.items, report.blobs) == (3, 3)
    assert report.young_blobs == report.young_temp_files == report.rewrap_pending == 0
    result = box.run(repair=True, unreadable=True, later=10 * HOUR)
    assert result.repaired == fsck.Repaired()
    assert result.remaining.clean
    assert box.readable() == before
    assert box.fsck_events() == []  # nothing done, nothing recorded


# --- blobs no item names ------------------------------------------------------------------


def test_a_blob_no_item_names_is_young_first_then_an_orphan(box: Box) -> None:
    blob_id = _orphan(box.store)
    # Its modification time is the fixed epoch; its age comes from when it was written.
    assert os.stat(box.store.path(blob_id)).st_mtime == FIXED_TIME
    assert box.store.changed_at(blob_id) >= time.time() - 60

    young = box.check()
    assert young.orphan_blobs == ()
    assert young.young_blobs == 1
    assert young.clean  # an upload in progress looks exactly like this
    assert box.run(repair=True).repaired == fsck.Repaired()
    assert box.store.exists(blob_id)

    old = box.check(later=2 * HOUR)
    assert old.orphan_blobs == (blob_id,)
    assert old.young_blobs == 0
    assert not old.clean
    result = box.run(repair=True, later=2 * HOUR)
    assert result.repaired == fsck.Repaired(orphan_blobs=1)
    assert result.remaining.clean
    assert not box.store.exists(blob_id)
    assert len(box.readable()) == 3
    assert box.fsck_events() == [
        {"orphan_blobs": 1, "temp_files": 0, "retired_wraps": 0, "unreadable_items": 0}
    ]


def test_a_delete_cut_short_after_its_commit_leaves_an_orphan(box: Box) -> None:
    """The rows went (committed) but the process died before the blob did."""
    (message,) = box.submit("to be deleted")
    blob_id = box.item(message).blob_id
    box.db.execute(delete(Wrap).where(Wrap.item_id == box.item(message).id))
    box.db.execute(delete(Item).where(Item.public_id == message))
    box.db.commit()
    assert box.check(later=2 * HOUR).orphan_blobs == (blob_id,)
    assert box.run(repair=True, later=2 * HOUR).remaining.clean
    assert not box.store.exists(blob_id)


def test_repair_keeps_an_orphan_whose_row_appeared_since_the_check(box: Box) -> None:
    """Each finding is checked again before it is acted on."""
    report = box.check(later=2 * HOUR)
    assert report.orphan_blobs == ()
    blob_id = _orphan(box.store)
    stale = box.check(later=2 * HOUR)
    assert stale.orphan_blobs == (blob_id,)
    # A row names the blob now (as if its submission had committed after the check).
    message = box.item(box.submit("another")[0])
    box.db.execute(update(Item).where(Item.id == message.id).values(blob_id=blob_id))
    box.db.commit()
    done = fsck.repair(box.db, box.store, box.identity, stale, now=time.time() + 2 * HOUR)
    box.db.commit()
    assert done.orphan_blobs == 0
    assert box.store.exists(blob_id)


# --- unfinished writes --------------------------------------------------------------------


def _crash_mid_write(store: FilesystemBlobStore) -> None:
    """A process that dies inside a blob write, without unwinding."""
    script = textwrap.dedent(
        f"""
        import os
        from tipbox.storage import FilesystemBlobStore
        store = FilesystemBlobStore({str(store.root)!r})
        with store.writer(store.new_id()) as out:
            out.write(b"partial ciphertext")
            out.flush()
            os._exit(3)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert done.returncode == 3


def test_an_unfinished_write_is_young_first_then_stale(box: Box) -> None:
    _crash_mid_write(box.store)
    (temp,) = box.store.incomplete()
    assert temp.name.split("/", 1)[1].startswith(TEMP_PREFIX)
    young = box.check()
    assert (young.stale_temp_files, young.young_temp_files) == ((), 1)
    assert young.clean

    old = box.check(later=2 * HOUR)
    assert (old.stale_temp_files, old.young_temp_files) == ((temp.name,), 0)
    result = box.run(repair=True, later=2 * HOUR)
    assert result.repaired == fsck.Repaired(temp_files=1)
    assert result.remaining.clean
    assert box.store.incomplete() == []


def test_a_write_about_to_rename_is_not_taken_for_an_old_leftover(box: Box) -> None:
    """A finished write sets the fixed time just before its rename: its change time still
    says it is new."""
    blob_id = box.store.new_id()
    with box.store.writer(blob_id) as out:
        out.write(b"almost there")
        out.flush()
        os.utime(out.fileno(), times=(FIXED_TIME, FIXED_TIME))
        assert box.store.stale_temp_files(HOUR) == []
        assert box.check().young_temp_files == 1
    assert box.store.exists(blob_id)


# --- items the newsroom cannot read -------------------------------------------------------


def test_an_item_whose_blob_is_missing_is_kept_unless_asked(box: Box) -> None:
    message, file = box.submit("its file goes missing", b"lost content")
    row = box.item(file)
    row_id = row.id
    os.unlink(box.store.path(row.blob_id))

    report = box.check()
    assert [ref.item_id for ref in report.missing_blobs] == [file.hex()]
    assert report.missing_blobs[0].kind == "file"
    assert report.damage == 1
    kept = box.run(repair=True)
    assert kept.repaired == fsck.Repaired()
    assert kept.remaining.damage == 1  # reported, not repaired without the flag
    box.item(file)

    done = box.run(repair=True, unreadable=True)
    assert done.repaired == fsck.Repaired(unreadable_items=1)
    assert done.remaining.clean
    box.db.rollback()
    assert box.db.scalars(select(Item).where(Item.public_id == file)).all() == []
    assert box.db.scalars(select(Wrap).where(Wrap.item_id == row_id)).all() == []
    assert box.readable()[message] == "its file goes missing"
    assert box.fsck_events() == [
        {"orphan_blobs": 0, "temp_files": 0, "retired_wraps": 0, "unreadable_items": 1}
    ]


def test_a_blob_of_the_wrong_size_is_damage_and_goes_with_its_item(box: Box) -> None:
    (message,) = box.submit("cut short")
    row = box.item(message)
    path = box.store.path(row.blob_id)
    with open(path, "r+b") as blob:
        blob.truncate(row.blob_size - 17)

    report = box.check()
    assert [(w.item.item_id, w.expected, w.found) for w in report.wrong_size] == [
        (message.hex(), row.blob_size, row.blob_size - 17)
    ]
    done = box.run(repair=True, unreadable=True)
    assert done.repaired == fsck.Repaired(unreadable_items=1)
    assert done.remaining.clean
    assert not path.exists()  # the blob went after the commit


def test_an_item_with_no_wrap_is_damage(box: Box) -> None:
    (message,) = box.submit("its key is gone")
    box.db.execute(delete(Wrap).where(Wrap.item_id == box.item(message).id))
    box.db.commit()
    report = box.check()
    assert [ref.item_id for ref in report.no_wraps] == [message.hex()]
    assert box.run(repair=True).remaining.no_wraps == report.no_wraps
    assert box.run(repair=True, unreadable=True).remaining.clean
    box.db.rollback()
    source = box.db.scalars(select(Source)).one()
    # The delete is a journalist's delete: the unread marker follows the items left.
    assert source.last_source_seq == max(
        box.db.scalars(select(Item.seq).where(Item.kind.in_([1, 2])))
    )


# --- keys ---------------------------------------------------------------------------------


def _rotate_and_retire(box: Box) -> PublicKeys:
    """Rotate, re-wrap everything, sweep and retire the old key; return the old key."""
    opened = box.opened
    box.db.rollback()
    old = rotation.current_key(box.db, box.identity).public
    grace = box.config.key_grace_seconds
    rotation.rotate(
        box.db, box.identity, opened.admin_keys, opened.admin.id, datetime.now(UTC), grace
    )
    box.db.commit()
    later = datetime.now(UTC) + timedelta(seconds=grace + 1)
    rotation.finish_rewrap(
        box.db, box.identity, opened.admin_keys, opened.admin.id, {}, later, grace
    )
    box.db.commit()
    rotation.retire(
        box.db, box.identity, opened.admin_keys, opened.admin.id, old.key_id, later, grace
    )
    box.db.commit()
    return old


def test_a_rewrap_cut_short_is_information_not_damage(box: Box) -> None:
    box.db.rollback()
    rotation.rotate(
        box.db,
        box.identity,
        box.opened.admin_keys,
        box.opened.admin.id,
        datetime.now(UTC),
        box.config.key_grace_seconds,
    )
    box.db.commit()
    report = box.check()
    assert report.rewrap_pending == 3  # every item is still wrapped to the retiring key
    assert report.clean
    assert box.run(repair=True, unreadable=True).repaired == fsck.Repaired()
    assert len(box.readable()) == 3


def _sealed_item(box: Box, keys: list[PublicKeys], text: str) -> bytes:
    """A message sealed to ``keys``, stored as a submission stores it."""
    source_id = box.opened.source.public_id
    item_id = new_public_id()
    recipients = {key.key_id: key.x25519 for key in keys}
    sealed = envelope.seal_text(Kind.MESSAGE, source_id, item_id, text, recipients)
    blob_id = box.store.new_id()
    with box.store.writer(blob_id) as out:
        out.write(sealed.blob)
    box.db.rollback()
    source = source_for_update(box.db, source_id)
    assert source is not None
    item = NewItem(
        item_id, Kind.MESSAGE, blob_id, len(sealed.blob), sealed.sealed_meta, sealed.wraps
    )
    store_items(box.db, box.store, source, [item], source_activity=True)
    box.db.commit()
    return item_id


def _current(box: Box) -> PublicKeys:
    box.db.rollback()
    return rotation.current_key(box.db, box.identity).public


def _wrap_keys(box: Box, item_id: bytes) -> set[bytes]:
    row = box.item(item_id)
    found = set(box.db.scalars(select(Wrap.key_id).where(Wrap.item_id == row.id)))
    box.db.rollback()
    return found


def test_a_wrap_to_a_retired_key_beside_a_readable_one_is_removed(box: Box) -> None:
    old = _rotate_and_retire(box)
    # What no current code path leaves (retire refuses while a wrap is left), but a partial
    # restore or a hand edit can: a wrap to the retired key beside a readable one.
    message = _sealed_item(box, [_current(box), old], "wrapped twice")
    report = box.check()
    assert [(w.item_id, w.key) for w in report.retired_wraps] == [(message.hex(), old.short_id)]
    assert report.damage == 0
    result = box.run(repair=True)
    assert result.repaired == fsck.Repaired(retired_wraps=1)
    assert result.remaining.clean
    assert _wrap_keys(box, message) == {_current(box).key_id}
    assert box.readable()[message] == "wrapped twice"
    assert box.fsck_events() == [
        {"orphan_blobs": 0, "temp_files": 0, "retired_wraps": 1, "unreadable_items": 0}
    ]


def test_an_item_wrapped_only_to_a_retired_key_is_reported_never_deleted(box: Box) -> None:
    old = _rotate_and_retire(box)
    stranded = _sealed_item(box, [old], "only the old key opens this")
    report = box.check()
    assert [ref.item_id for ref in report.retired_only] == [stranded.hex()]
    assert report.retired_wraps == ()
    assert report.damage == 1
    result = box.run(repair=True, unreadable=True)
    assert result.repaired == fsck.Repaired()
    assert [ref.item_id for ref in result.remaining.retired_only] == [stranded.hex()]
    assert _wrap_keys(box, stranded) == {old.key_id}


def test_an_entry_that_does_not_verify_decides_nothing(box: Box) -> None:
    old = _rotate_and_retire(box)
    both = _sealed_item(box, [_current(box), old], "readable with the current key")
    only_old = _sealed_item(box, [old], "only the old key")
    box.db.rollback()
    entry = box.db.get(DirectoryEntry, old.key_id)
    assert entry is not None
    entry.signature = bytes([entry.signature[0] ^ 1]) + entry.signature[1:]
    box.db.commit()

    report = box.check()
    assert report.unverified_keys == (old.short_id,)
    # Its "retired" cannot be trusted: its wraps are neither removable nor "retired only".
    assert report.retired_wraps == ()
    assert report.retired_only == ()
    assert [ref.item_id for ref in report.no_newsroom_wrap] == [only_old.hex()]
    result = box.run(repair=True, unreadable=True)
    assert result.repaired == fsck.Repaired()
    assert result.remaining.damage == 2
    assert _wrap_keys(box, both) == {_current(box).key_id, old.key_id}
    assert _wrap_keys(box, only_old) == {old.key_id}


# --- the audit log ------------------------------------------------------------------------


def test_the_audit_event_carries_counts_only(box: Box) -> None:
    _orphan(box.store)
    _crash_mid_write(box.store)
    (message,) = box.submit("lost")
    os.unlink(box.store.path(box.item(message).blob_id))
    assert box.run(repair=False, later=2 * HOUR).repaired is None
    assert box.fsck_events() == []  # a dry run records nothing
    box.run(repair=True, unreadable=True, later=2 * HOUR)
    assert box.fsck_events() == [
        {"orphan_blobs": 1, "temp_files": 1, "retired_wraps": 0, "unreadable_items": 1}
    ]
    box.db.rollback()
    (event,) = box.db.scalars(select(AuditEvent).where(AuditEvent.action == "fsck.repair"))
    assert event.actor_journalist_id is None  # no admin unlocks fsck
    # Never an id of what it removed.
    with pytest.raises(ValueError, match="does not record"):
        audit.record(box.db, None, "fsck.repair", item=message.hex())
    box.db.rollback()
