"""Retention: delete the sources that have had no activity for the configured number of days.

A source is active on the day it gets its codename, logs in or sends something
(``sources.last_active_on``); a journalist's reply or note does not count. With retention
at N days, a source last active on day D is deleted from day D + N + 1 on: N whole days
have then passed without it. With retention off (``retention_days`` NULL), nothing is.

``run_retention`` is what ``tipbox retention run`` calls, from a daily timer; the same run
applies the automatic spam purge (``tipbox.spam``) and deletes the counters of ended budget
windows (``tipbox.budgets``). It needs no
admin unlock: it only deletes, which needs no key, and what it deletes and when was decided
by an admin in the settings; the timer runs it as the journalist app's user, which may
already delete sources. Due sources go in transactions of at most ``BATCH_SOURCES``, each
with its ``retention.run`` audit event (as ``tipbox.audit`` wants: the event commits with
the change), so an ordinary daily run records one event, also when nothing was due (the log
then shows the timer runs). Batches keep each write short: on SQLite every other writer, a
source's submission included, waits for the write lock (for at most 10 s), and deleting a
source takes 10 to 20 ms (1,000 sources of three messages: 11 s on SQLite). The database
is scrubbed once, after the last batch (``tipbox.db.scrub``).

A source with a live session is never due: its session began on a day it was active, at
most a session's lifetime ago, and the shortest retention is one whole day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tipbox import audit, budgets, conversations, sessions
from tipbox.config import Config
from tipbox.db import make_session_factory, scrub, transaction
from tipbox.models import Source, today
from tipbox.settings import read as read_settings
from tipbox.spam import purge_due_spam
from tipbox.storage import BlobStore

__all__ = [
    "BATCH_SOURCES",
    "RetentionResult",
    "apply_retention",
    "count_due",
    "cutoff_for",
    "due_sources",
    "run_retention",
]

# Sources deleted per transaction: one or two seconds of holding SQLite's write lock.
BATCH_SOURCES: Final = 100


@dataclass(frozen=True)
class RetentionResult:
    """What a run did, or would do: ``days`` None means retention is off (and ``cutoff``
    is then None too); ``sources`` counts those deleted (or due, in a dry run)."""

    days: int | None
    cutoff: date | None
    sources: int
    dry_run: bool
    # Sources deleted by the automatic spam purge in the same run (tipbox.spam).
    spam: int = 0


def cutoff_for(days: int, on: date) -> date:
    """The first day of activity that keeps a source on day ``on``: earlier ones are due."""
    return on - timedelta(days=days)


def due_sources(
    session: Session, cutoff: date, *, lock: bool, limit: int | None = None
) -> list[bytes]:
    """The public ids of the sources last active before ``cutoff``, oldest first (at most
    ``limit`` of them).

    With ``lock`` they are locked until the transaction ends, and a source that became
    active meanwhile is left out (PostgreSQL re-checks the condition on the locked row;
    SQLite's write transaction excludes every other writer from its start).
    """
    query = (
        select(Source.public_id)
        .where(Source.last_active_on < cutoff)
        .order_by(Source.last_active_on, Source.id)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query))


def apply_retention(
    session: Session,
    store: BlobStore,
    config: Config,
    *,
    on: date | None = None,
    limit: int | None = None,
) -> RetentionResult:
    """Delete the due sources (the ``limit`` oldest) in the caller's transaction, and record
    ``retention.run`` with their number.

    Blobs go when the transaction commits (``conversations.delete_source``); the caller
    then scrubs. Nothing is done, and nothing recorded, when retention is off.
    """
    days = read_settings(session, config).retention_days
    if days is None:
        return RetentionResult(None, None, 0, dry_run=False)
    cutoff = cutoff_for(days, on or today())
    deleted = sum(
        conversations.delete_source(session, store, public_id)
        for public_id in due_sources(session, cutoff, lock=True, limit=limit)
    )
    audit.record(session, None, "retention.run", sources=deleted, days=days)
    return RetentionResult(days, cutoff, deleted, dry_run=False)


def count_due(session: Session, config: Config, *, on: date | None = None) -> RetentionResult:
    """What a run would delete now, without deleting anything (a dry run)."""
    days = read_settings(session, config).retention_days
    if days is None:
        return RetentionResult(None, None, 0, dry_run=True)
    cutoff = cutoff_for(days, on or today())
    return RetentionResult(days, cutoff, len(due_sources(session, cutoff, lock=False)), True)


def run_retention(
    engine: Engine,
    store: BlobStore,
    config: Config,
    *,
    dry_run: bool = False,
    on: date | None = None,
    batch: int = BATCH_SOURCES,
) -> RetentionResult:
    """One retention run on ``engine``'s database: batches of ``batch`` sources in
    transactions of their own until none is left, expired sessions deleted, then one
    scrub if anything was deleted.
    ``dry_run`` only counts. ``on`` is today unless given."""
    # One day for the whole run, even one that crosses midnight.
    day = on or today()
    if dry_run:
        with transaction(make_session_factory(engine, read_only=True)) as session:
            return count_due(session, config, on=day)
    factory = make_session_factory(engine)
    deleted = 0
    while True:
        with transaction(factory) as session:
            done = apply_retention(session, store, config, on=day, limit=batch)
        deleted += done.sources
        if done.sources < batch:
            break
    spam = purge_due_spam(engine, store, config, on=day)
    with transaction(factory) as session:
        # Expired sessions are deleted here too: a row whose cookie never comes back would
        # otherwise keep its expiry times for good.
        purged = sessions.purge_expired(session, datetime.now(UTC))
    # And the counters of ended budget windows, when no request came to delete them.
    forgotten = budgets.forget_ended(factory)
    if deleted or purged or spam or forgotten:
        scrub(engine)
    return RetentionResult(done.days, done.cutoff, deleted, dry_run=False, spam=spam)
