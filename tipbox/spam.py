"""Spam: deleting sources marked spam, all at once or once marked for N days (docs/abuse.md).

A source is marked spam by its triage status (``tipbox.triage``), which also records the
day in ``sources.spam_since``. Spam is hidden from the default inbox; a journalist can
delete every spam source at once, and an admin can set ``spam_purge_days`` so that
``tipbox retention run`` deletes sources marked spam that many days ago.

Deletion goes through ``conversations.delete_source`` (wraps, items, row, then blobs when
the transaction commits), in batches of ``BATCH_SOURCES`` with one ``spam.purge`` audit
event each. Only counts are recorded. The caller scrubs the database afterwards.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tipbox import audit, conversations
from tipbox.config import Config
from tipbox.db import make_session_factory, transaction
from tipbox.models import SOURCE_STATUS_SPAM, Source, today
from tipbox.settings import read as read_settings
from tipbox.storage import BlobStore

BATCH_SOURCES: Final = 100


def spam_sources(
    session: Session, *, marked_before: date | None = None, limit: int | None = None
) -> list[bytes]:
    """Public ids of sources marked spam (before ``marked_before``, if given), locked."""
    query = select(Source.public_id).where(Source.status == SOURCE_STATUS_SPAM)
    if marked_before is not None:
        query = query.where(Source.spam_since < marked_before)
    return list(session.scalars(query.order_by(Source.id).limit(limit).with_for_update()))


def delete_spam(
    session: Session,
    store: BlobStore,
    actor_id: int | None,
    *,
    days: int | None = None,
    on: date | None = None,
    limit: int | None = BATCH_SOURCES,
) -> int:
    """Delete up to ``limit`` spam sources in the caller's transaction; how many went.

    ``days`` None: every spam source (a journalist's "delete all spam"); else those marked
    spam more than ``days`` whole days before ``on`` (today). Records ``spam.purge``.
    """
    cutoff = None if days is None else (on or today()) - timedelta(days=days)
    due = spam_sources(session, marked_before=cutoff, limit=limit)
    deleted = sum(conversations.delete_source(session, store, public_id) for public_id in due)
    audit.record(session, actor_id, "spam.purge", sources=deleted, days=days or 0)
    return deleted


def count_spam(session: Session) -> int:
    """How many sources are marked spam."""
    query = select(func.count()).select_from(Source).where(Source.status == SOURCE_STATUS_SPAM)
    return int(session.scalar(query) or 0)


def purge_due_spam(
    engine: Engine, store: BlobStore, config: Config, *, on: date | None = None
) -> int:
    """The automatic purge (``tipbox retention run``): delete sources marked spam more than
    the settings' ``spam_purge_days`` ago, in batches; 0 when the purge is off."""
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        days = read_settings(session, config).spam_purge_days
    if days is None:
        return 0
    deleted = 0
    while True:
        with transaction(factory) as session:
            done = delete_spam(session, store, None, days=days, on=on)
        deleted += done
        if done < BATCH_SOURCES:
            return deleted
