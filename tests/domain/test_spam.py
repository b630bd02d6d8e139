"""Spam (``tipbox.spam``): the day a source is marked, delete-all, and the automatic purge.

Real database (each backend) and blob store; days are set in rows as the app would have
left them. Nothing mocked.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tipbox import retention, settings, sources, spam, triage
from tipbox.config import Config
from tipbox.models import (
    SOURCE_STATUS_CLOSED,
    SOURCE_STATUS_SPAM,
    AuditEvent,
    Item,
    Source,
    today,
)
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

from .opened import OpenedInstance, open_instance

LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1024 * 1024)


@pytest.fixture
def desk(db: Session, config: Config) -> OpenedInstance:
    return open_instance(db, config)


def _source(db: Session, store: FilesystemBlobStore, desk: OpenedInstance) -> bytes:
    public_id = sources.create_source(db).public_id
    accept_server_submission(db, store, desk.identity, public_id, "buy now", [], LIMITS)
    db.commit()
    return public_id


def _spam_since(db: Session, public_id: bytes) -> object:
    return db.scalar(select(Source.spam_since).where(Source.public_id == public_id))


def _mark_spam_days_ago(db: Session, public_id: bytes, days: int) -> None:
    triage.set_status(db, [public_id], SOURCE_STATUS_SPAM)
    db.execute(
        update(Source)
        .where(Source.public_id == public_id)
        .values(spam_since=today() - timedelta(days=days))
    )
    db.commit()


def test_marking_spam_records_the_first_day_and_other_statuses_clear_it(
    db: Session, blob_store: FilesystemBlobStore, desk: OpenedInstance
) -> None:
    public_id = _source(db, blob_store, desk)
    assert _spam_since(db, public_id) is None
    _mark_spam_days_ago(db, public_id, 5)
    triage.set_status(db, [public_id], SOURCE_STATUS_SPAM)  # marked again: the day stays
    assert _spam_since(db, public_id) == today() - timedelta(days=5)
    triage.set_status(db, [public_id], SOURCE_STATUS_CLOSED)
    assert _spam_since(db, public_id) is None
    triage.set_status(db, [public_id], SOURCE_STATUS_SPAM)
    assert _spam_since(db, public_id) == today()


def test_delete_spam_removes_every_spam_source_and_records_a_count(
    db: Session, config: Config, blob_store: FilesystemBlobStore, desk: OpenedInstance
) -> None:
    keep = _source(db, blob_store, desk)
    junk = [_source(db, blob_store, desk) for _ in range(3)]
    for public_id in junk:
        _mark_spam_days_ago(db, public_id, 0)
    blobs_before = len(list(blob_store.ids()))
    assert spam.count_spam(db) == 3
    assert spam.delete_spam(db, blob_store, desk.admin.id) == 3
    db.commit()
    assert set(db.scalars(select(Source.public_id))) == {keep, desk.source.public_id}
    assert len(list(blob_store.ids())) == blobs_before - 3
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "spam.purge")).one()
    assert event.actor_journalist_id == desk.admin.id
    assert event.detail == {"sources": 3, "days": 0}


def test_the_automatic_purge_deletes_spam_marked_long_enough_ago(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    old, recent, ham = (_source(db, blob_store, desk) for _ in range(3))
    _mark_spam_days_ago(db, old, 8)
    _mark_spam_days_ago(db, recent, 7)
    # Off by default: nothing is purged.
    assert spam.purge_due_spam(engine, blob_store, config) == 0
    settings.update(db, config, None, spam_purge_days=7, retention_days=None)
    db.commit()
    done = retention.run_retention(engine, blob_store, config)
    assert done.spam == 1
    db.expire_all()
    left = set(db.scalars(select(Source.public_id)))
    assert old not in left
    assert {recent, ham} <= left
    assert db.scalar(select(Item.id).join(Source).where(Source.public_id == old)) is None


@pytest.mark.parametrize("days", [0, -1, 3651, "7"])
def test_the_purge_setting_is_checked(
    db: Session, config: Config, desk: OpenedInstance, days: object
) -> None:
    with pytest.raises(settings.SettingsError) as refused:
        settings.update(db, config, None, spam_purge_days=days)  # type: ignore[arg-type]
    assert [problem.field for problem in refused.value.problems] == ["spam_purge_days"]
