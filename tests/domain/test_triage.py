"""Triage and tags as domain functions: statuses, stars, assignees, read markers, tags.

Real instance and database (SQLite, and PostgreSQL when configured); sources submit
through the real server path.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import conversations, directory, sources, tagging, triage
from tipbox.config import Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import Role
from tipbox.crypto.tags import SEALED_TAG_BYTES
from tipbox.models import (
    SOURCE_STATUS_SPAM,
    SOURCE_STATUS_VERIFIED,
    DirectoryEntry,
    Grant,
    ReadMarker,
    Source,
    SourceTag,
)
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

from .opened import OpenedInstance, open_instance

LIMITS = Limits(max_message_chars=10_000, max_files=3, max_file_bytes=1 << 20)


@pytest.fixture
def desk(db: Session, config: Config) -> OpenedInstance:
    return open_instance(db, config)


def _submit(db: Session, store: FilesystemBlobStore, message: str) -> bytes:
    new = sources.create_source(db)
    db.commit()
    accept_server_submission(
        db, store, directory.identity_public(db), new.public_id, message, [], LIMITS
    )
    db.commit()
    return new.public_id


def _source(db: Session, public_id: bytes) -> Source:
    query = select(Source).where(Source.public_id == public_id)
    return db.scalars(query.execution_options(populate_existing=True)).one()


def test_status_star_and_assignee_apply_to_the_sources_that_exist(
    db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore
) -> None:
    one, two = _submit(db, blob_store, "a"), _submit(db, blob_store, "b")
    gone = bytes(16)
    assert triage.set_status(db, [one, two, gone], SOURCE_STATUS_VERIFIED) == 2
    assert triage.set_starred(db, [one, gone], True) == 1
    assert triage.set_assignee(db, [two], desk.admin.public_id) == 1
    db.commit()
    assert (_source(db, one).status, _source(db, one).starred) == (SOURCE_STATUS_VERIFIED, True)
    assert _source(db, two).assignee_id == desk.admin.id
    with pytest.raises(ValueError, match="status"):
        triage.set_status(db, [one], 9)
    with pytest.raises(LookupError):
        triage.set_assignee(db, [one], bytes(16))
    desk.admin.is_active = False
    db.flush()
    with pytest.raises(LookupError):
        triage.set_assignee(db, [one], desk.admin.public_id)
    assert triage.set_assignee(db, [two], None) == 1


def test_read_markers_follow_the_sources_own_items(
    db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore
) -> None:
    tip = _submit(db, blob_store, "first")
    row = _source(db, tip)
    assert row.last_source_seq == 1
    assert triage.mark_read(db, desk.admin.id, [tip]) == 1
    assert triage.mark_read(db, desk.admin.id, [tip]) == 1  # again: an update, not a clash
    db.commit()
    marker = db.get(ReadMarker, (desk.admin.id, row.id))
    assert marker is not None
    assert marker.seen_seq == 1
    # A reply does not make the source unread; a new message does.
    conversations.add_reply(
        db, blob_store, desk.identity, desk.admin, desk.admin_keys, tip, "thanks"
    )
    db.commit()
    assert _source(db, tip).last_source_seq == 1
    accept_server_submission(db, blob_store, desk.identity, tip, "more", [], LIMITS)
    db.commit()
    assert _source(db, tip).last_source_seq == 3
    # Deleting the newest message moves the mark back.
    newest = conversations.conversation(db, blob_store, desk.identity, desk.admin_keys, tip)[-1]
    assert conversations.delete_item(db, blob_store, newest.item_id)
    db.commit()
    assert _source(db, tip).last_source_seq == 1
    assert triage.mark_unread(db, desk.admin.id, [tip]) == 1
    db.commit()
    assert db.get(ReadMarker, (desk.admin.id, row.id)) is None


def test_init_makes_a_metadata_key_granted_to_the_admin(db: Session, desk: OpenedInstance) -> None:
    key_id = tagging.metadata_key_id(db)
    assert key_id is not None
    assert directory.entry(db, desk.identity, key_id).role == Role.METADATA
    keys = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=False)
    assert keys is not None
    assert keys.key_id == key_id


def test_tags_are_sealed_indexed_and_found(
    db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore
) -> None:
    keys = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=True)
    assert keys is not None
    one, two = _submit(db, blob_store, "a"), _submit(db, blob_store, "b")
    assert tagging.add_tag(db, keys, one, "  Ministry   of  Health ") == "Ministry of Health"
    tagging.add_tag(db, keys, one, "MINISTRY OF HEALTH")  # the same tag: no second row
    tagging.add_tag(db, keys, two, "ministry of health")
    tagging.add_tag(db, keys, two, "лекарства")
    db.commit()
    rows = list(db.scalars(select(SourceTag)))
    assert len(rows) == 3
    assert all(len(row.sealed_tag) == SEALED_TAG_BYTES for row in rows)
    assert all(b"inistry" not in row.sealed_tag for row in rows)
    ids = {_source(db, one).id: one, _source(db, two).id: two}
    shown = tagging.tags_of(db, keys, ids)
    by_public = {ids[source_id]: tags for source_id, tags in shown.items()}
    assert by_public == {one: ["Ministry of Health"], two: ["ministry of health", "лекарства"]}
    assert sorted(tagging.all_tags(db, keys), key=str.casefold)[-1] == "лекарства"
    assert len(tagging.all_tags(db, keys)) == 2
    index = tagging.index_of(keys, "ministry OF health")
    assert index is not None
    tagged = set(db.scalars(select(Source.public_id).where(tagging.has_tag(index))))
    assert tagged == {one, two}
    assert tagging.remove_tag(db, keys, one, "ministry of health")
    assert not tagging.remove_tag(db, keys, one, "ministry of health")
    db.commit()
    assert set(db.scalars(select(Source.public_id).where(tagging.has_tag(index)))) == {two}


def test_tag_rules(db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore) -> None:
    keys = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=True)
    assert keys is not None
    tip = _submit(db, blob_store, "a")
    for bad in ("", "x" * 49, "a\u202eb"):
        with pytest.raises(ValueError, match="tag"):
            tagging.add_tag(db, keys, tip, bad)
    with pytest.raises(LookupError):
        tagging.add_tag(db, keys, bytes(16), "fine")
    for number in range(tagging.MAX_TAGS_PER_SOURCE):
        tagging.add_tag(db, keys, tip, f"tag {number}")
    with pytest.raises(tagging.TagLimitReached):
        tagging.add_tag(db, keys, tip, "one too many")


def test_a_tag_moved_to_another_source_does_not_open(
    db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore
) -> None:
    keys = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=True)
    assert keys is not None
    one, two = _submit(db, blob_store, "a"), _submit(db, blob_store, "b")
    tagging.add_tag(db, keys, one, "secret lead")
    db.commit()
    row = db.scalars(select(SourceTag)).one()
    row.source_id = _source(db, two).id
    db.commit()
    assert tagging.tags_of(db, keys, [_source(db, two).id]) == {_source(db, two).id: []}


def test_an_upgraded_instance_gets_its_metadata_key_from_the_first_admin(
    db: Session, desk: OpenedInstance
) -> None:
    key_id = tagging.metadata_key_id(db)
    db.query(Grant).filter(Grant.key_id == key_id).delete()
    db.query(DirectoryEntry).filter(DirectoryEntry.key_id == key_id).delete()
    db.commit()
    assert tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=False) is None
    made = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=True)
    assert made is not None
    db.commit()
    assert tagging.metadata_key_id(db) == made.key_id
    again = tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=False)
    assert again is not None
    assert again.tag_key == made.tag_key
    with pytest.raises(ValueError, match="already"):
        tagging.create_metadata_key(db, desk.identity_keys)


def test_a_journalist_without_the_grant_gets_no_tag_keys(db: Session, desk: OpenedInstance) -> None:
    key_id = tagging.metadata_key_id(db)
    db.query(Grant).filter(Grant.key_id == key_id).delete()
    db.commit()
    with pytest.raises(Rejected, match=r"grant\.missing"):
        tagging.open_metadata_keys(db, desk.identity, desk.admin_keys, is_admin=True)


def test_spam_is_a_status(
    db: Session, desk: OpenedInstance, blob_store: FilesystemBlobStore
) -> None:
    tip = _submit(db, blob_store, "buy now")
    assert triage.set_status(db, [tip], triage.STATUS_BY_NAME["spam"]) == 1
    db.commit()
    assert _source(db, tip).status == SOURCE_STATUS_SPAM
