"""Retention (``tipbox.retention``): sources with no activity for N days are deleted.

Real database (each backend) and blob store; a source's last day of activity is set in its
row, as the source app would have left it on that day. Nothing mocked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from tipbox import retention, sessions, settings, sources
from tipbox.config import Config
from tipbox.crypto import sessionbox
from tipbox.models import AuditEvent, Item, SessionRow, Source, Wrap, today
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

from .opened import OpenedInstance, open_instance

LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1024 * 1024)


@pytest.fixture
def desk(db: Session, config: Config) -> OpenedInstance:
    return open_instance(db, config)


def _source_last_active(
    db: Session, store: FilesystemBlobStore, desk: OpenedInstance, days_ago: int
) -> bytes:
    """A new source with one message, last active ``days_ago`` days ago."""
    public_id = sources.create_source(db).public_id
    accept_server_submission(db, store, desk.identity, public_id, "a tip", [], LIMITS)
    day = today() - timedelta(days=days_ago)
    db.execute(update(Source).where(Source.public_id == public_id).values(last_active_on=day))
    db.commit()
    return public_id


def _run(
    db: Session, engine: Engine, store: FilesystemBlobStore, config: Config, **options: Any
) -> retention.RetentionResult:
    """A run, as the timer makes it: the test's own transaction ended first (on SQLite an
    open one would hold the write lock the run needs)."""
    db.rollback()
    return retention.run_retention(engine, store, config, **options)


def _remaining(db: Session) -> set[bytes]:
    db.rollback()  # a fresh transaction: see what the run committed
    return set(db.scalars(select(Source.public_id)))


def _retention_events(db: Session) -> list[dict[str, object]]:
    rows = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "retention.run").order_by(AuditEvent.id)
    ).all()
    return [dict(row.detail) for row in rows]


def test_sources_past_the_retention_are_deleted_with_everything_of_theirs(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    # The default retention is 90 days: last active 91 days ago is due, 90 is not.
    due = [_source_last_active(db, blob_store, desk, days) for days in (91, 400)]
    kept = [_source_last_active(db, blob_store, desk, days) for days in (90, 0)]
    kept.append(desk.source.public_id)  # made today
    blobs_before = set(blob_store.ids())
    assert len(blobs_before) == 4

    result = _run(db, engine, blob_store, config)

    assert result == retention.RetentionResult(
        days=90, cutoff=today() - timedelta(days=90), sources=2, dry_run=False
    )
    remaining = _remaining(db)
    assert remaining == set(kept)
    assert remaining.isdisjoint(due)
    assert db.scalar(select(func.count()).select_from(Item)) == 2
    assert db.scalar(select(func.count()).select_from(Wrap)) == 2
    assert len(set(blob_store.ids())) == 2
    assert _retention_events(db) == [{"sources": 2, "days": 90}]

    # Run again: nothing more is due, and the log shows that the run happened.
    again = _run(db, engine, blob_store, config)
    assert again.sources == 0
    assert _remaining(db) == set(kept)
    assert _retention_events(db) == [{"sources": 2, "days": 90}, {"sources": 0, "days": 90}]


def test_a_dry_run_counts_and_changes_nothing(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    for days in (100, 200, 10):
        _source_last_active(db, blob_store, desk, days)
    before = _remaining(db)
    result = _run(db, engine, blob_store, config, dry_run=True)
    assert (result.sources, result.days, result.dry_run) == (2, 90, True)
    assert _remaining(db) == before
    assert _retention_events(db) == []


def test_retention_off_deletes_nothing_and_records_nothing(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    _source_last_active(db, blob_store, desk, 3000)
    settings.update(db, config, desk.admin.id, retention_days=None)
    db.commit()
    before = _remaining(db)
    for dry_run in (True, False):
        result = _run(db, engine, blob_store, config, dry_run=dry_run)
        assert result == retention.RetentionResult(None, None, 0, dry_run)
    assert _remaining(db) == before
    assert _retention_events(db) == []


def test_the_shortest_retention_keeps_yesterday(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    settings.update(db, config, desk.admin.id, retention_days=1)
    db.commit()
    yesterday = _source_last_active(db, blob_store, desk, 1)
    _source_last_active(db, blob_store, desk, 2)
    assert _run(db, engine, blob_store, config).sources == 1
    assert _remaining(db) == {yesterday, desk.source.public_id}


def test_the_day_of_the_run_can_be_given(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    # The cutoff follows the day given: a source active today is due 31 days from now.
    settings.update(db, config, desk.admin.id, retention_days=30)
    db.commit()
    later = today() + timedelta(days=31)
    dry = _run(db, engine, blob_store, config, dry_run=True, on=later)
    assert (dry.sources, dry.cutoff) == (1, today() + timedelta(days=1))
    assert _run(db, engine, blob_store, config, on=later - timedelta(1)).sources == 0
    assert _run(db, engine, blob_store, config, on=later).sources == 1
    assert _remaining(db) == set()


def test_due_sources_are_listed_oldest_first(
    db: Session, blob_store: FilesystemBlobStore, desk: OpenedInstance
) -> None:
    middle = _source_last_active(db, blob_store, desk, 50)
    oldest = _source_last_active(db, blob_store, desk, 70)
    _source_last_active(db, blob_store, desk, 5)
    cutoff = retention.cutoff_for(10, today())
    assert retention.due_sources(db, cutoff, lock=False) == [oldest, middle]
    assert retention.cutoff_for(10, date(2024, 3, 1)) == date(2024, 2, 20)


def test_a_long_run_goes_in_batches_each_with_its_event(
    db: Session,
    engine: Engine,
    config: Config,
    blob_store: FilesystemBlobStore,
    desk: OpenedInstance,
) -> None:
    due = [_source_last_active(db, blob_store, desk, 100 + days) for days in range(5)]
    result = _run(db, engine, blob_store, config, batch=2)
    assert result.sources == 5
    assert _remaining(db).isdisjoint(due)
    assert _retention_events(db) == [
        {"sources": 2, "days": 90},
        {"sources": 2, "days": 90},
        {"sources": 1, "days": 90},
    ]


def test_one_batch_takes_the_oldest(
    db: Session, config: Config, blob_store: FilesystemBlobStore, desk: OpenedInstance
) -> None:
    newer = _source_last_active(db, blob_store, desk, 100)
    for days in (300, 200):
        _source_last_active(db, blob_store, desk, days)
    done = retention.apply_retention(db, blob_store, config, limit=2)
    db.commit()
    assert done.sources == 2
    assert _remaining(db) == {newer, desk.source.public_id}
    assert _retention_events(db) == [{"sources": 2, "days": 90}]


def test_a_run_deletes_expired_sessions(
    db: Session, config: Config, blob_store: FilesystemBlobStore, desk: OpenedInstance
) -> None:
    now = datetime.now(UTC)
    live = sessions.create(db, sessions.SOURCE, "s1", "source", None, {}, 600, 3600, now)
    gone = sessions.create(
        db, sessions.SOURCE, "s2", "source", None, {}, 600, 3600, now - timedelta(hours=2)
    )
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    retention.run_retention(engine, blob_store, config)
    db.rollback()
    assert sessions.load(db, sessions.SOURCE, live, now) is not None
    assert db.get(SessionRow, sessionbox.row_id_hex(sessionbox.decode_cookie(gone))) is None
