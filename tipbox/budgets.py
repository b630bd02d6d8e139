"""Flood budgets counted in the database, so that every process and host shares them
(docs/abuse.md).

Two budgets live here, each counted per fixed window in one ``budget_counters`` row:

- **new sources per minute**, for the whole instance (row ``new-sources``);
- **submissions per hour**, for one source, in a row whose key only that source's codename
  links to it (``tipbox.crypto.budgets``).

``take`` uses one upsert that increments the window's count only while it is under the
limit, so two processes can never both take the last unit. It runs in its own short
transaction: a row lock held through an Argon2id run or an upload would queue every other
request behind it. Rows of ended windows are deleted by ``forget_ended`` whenever a unit
opens a new window (once a minute, and at a source's first submission of an hour), in a
transaction of its own that skips rows another transaction holds, so it never waits (and
so can never deadlock with a ``take``); ``tipbox retention run`` deletes them too. A limit
of 0 turns a budget off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from sqlalchemy import case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tipbox.crypto.budgets import counter_key, source_budget_key
from tipbox.db import transaction
from tipbox.models import BudgetCounter

NEW_SOURCES: Final = b"new-sources"
SUBMISSIONS: Final = b"submissions"
MINUTE: Final = 60
HOUR: Final = 3600
# Ended rows deleted per call: bounded, so that the call stays short.
FORGET_BATCH: Final = 500


@dataclass(frozen=True)
class Taken:
    """The answer of a budget: ``allowed``, or not and for how many more seconds."""

    allowed: bool
    retry_after: int = 0
    # True when this unit opened its window: a moment to delete rows of ended windows.
    opened_window: bool = False


def window_end(now: float, length: int) -> int:
    """The Unix time at which the window of ``length`` seconds holding ``now`` ends."""
    return (int(now) // length + 1) * length


def take(session: Session, key: bytes, length: int, limit: int, now: float) -> Taken:
    """Take one unit of the budget ``key`` (windows of ``length`` s, ``limit`` per window)."""
    if limit <= 0:
        return Taken(True)
    ends = window_end(now, length)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(BudgetCounter).values(key=key, window_end=ends, count=1)
    same_window = BudgetCounter.window_end == upsert.excluded.window_end
    statement = upsert.on_conflict_do_update(
        index_elements=[BudgetCounter.key],
        set_={
            "count": case((same_window, BudgetCounter.count + 1), else_=1),
            "window_end": upsert.excluded.window_end,
        },
        where=or_(~same_window, BudgetCounter.count < limit),
    ).returning(BudgetCounter.count)
    counted = session.execute(statement).scalar_one_or_none()
    if counted is None:
        return Taken(False, retry_after=max(1, ends - int(now)))
    return Taken(True, opened_window=counted == 1)


def take_new_source(factory: sessionmaker[Session], limit: int, now: float | None = None) -> Taken:
    """One new source, from the instance's budget per minute (its own transaction)."""
    moment = time.time() if now is None else now
    with transaction(factory) as session:
        taken = take(session, NEW_SOURCES, MINUTE, limit, moment)
    if taken.opened_window:
        forget_ended(factory, moment)
    return taken


def take_submission(
    factory: sessionmaker[Session], source_seed: bytes, limit: int, now: float | None = None
) -> Taken:
    """One submission, from the source's own budget per hour (its own transaction)."""
    moment = time.time() if now is None else now
    key = counter_key(source_budget_key(source_seed), SUBMISSIONS, window_end(moment, HOUR))
    with transaction(factory) as session:
        taken = take(session, key, HOUR, limit, moment)
    if taken.opened_window:
        forget_ended(factory, moment)
    return taken


def forget_ended(factory: sessionmaker[Session], now: float | None = None) -> int:
    """Delete up to ``FORGET_BATCH`` rows of ended windows; how many went.

    Rows another transaction holds are skipped (PostgreSQL's SKIP LOCKED; SQLite has one
    writer at a time anyway), so this never waits for a lock.
    """
    moment = int(time.time() if now is None else now)
    ended = (
        select(BudgetCounter.key)
        .where(BudgetCounter.window_end <= moment)
        .limit(FORGET_BATCH)
        .with_for_update(skip_locked=True)
    )
    with transaction(factory) as session:
        keys = list(session.scalars(ended))
        if keys:
            session.execute(delete(BudgetCounter).where(BudgetCounter.key.in_(keys)))
    return len(keys)
