"""Triage of sources: status, star, assignee and read markers, one source or many at once.

All of it is in clear in the database (DESIGN 2.5; the threat model lists it). Sources are
named by their public ids; functions that take several apply to those that exist and
return how many that was, so a bulk action over a page where another journalist has just
deleted a source does what it still can.

Read markers: a journalist has read a source up to ``seen_seq``; the source has unread
items for them while its ``last_source_seq`` (its own newest message or file) is past
that. Opening the conversation marks it read up to its last item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tipbox.models import (
    SOURCE_STATUS_CLOSED,
    SOURCE_STATUS_IN_REVIEW,
    SOURCE_STATUS_NEW,
    SOURCE_STATUS_PUBLISHED,
    SOURCE_STATUS_SPAM,
    SOURCE_STATUS_VERIFIED,
    Item,
    Journalist,
    ReadMarker,
    Source,
    today,
)

# Status names as forms and URLs carry them, in the order pages list them.
STATUS_BY_NAME: Final[dict[str, int]] = {
    "new": SOURCE_STATUS_NEW,
    "review": SOURCE_STATUS_IN_REVIEW,
    "verified": SOURCE_STATUS_VERIFIED,
    "published": SOURCE_STATUS_PUBLISHED,
    "closed": SOURCE_STATUS_CLOSED,
    "spam": SOURCE_STATUS_SPAM,
}
NAME_OF_STATUS: Final[dict[int, str]] = {value: name for name, value in STATUS_BY_NAME.items()}
# The kinds a source sends; only these count as unread.
SOURCE_KINDS: Final = (1, 2)


def _ids(session: Session, source_public_ids: Sequence[bytes]) -> list[int]:
    if not source_public_ids:
        return []
    return list(
        session.scalars(select(Source.id).where(Source.public_id.in_(list(source_public_ids))))
    )


def set_status(session: Session, source_public_ids: Sequence[bytes], status: int) -> int:
    """Give each source ``status`` (a ``SOURCE_STATUS_*``); returns how many were found."""
    if status not in NAME_OF_STATUS:
        raise ValueError("unknown status")
    ids = _ids(session, source_public_ids)
    if ids:
        # The day a source became spam starts its automatic purge (tipbox.spam); marking
        # spam again keeps the first day, and any other status clears it.
        spam_since = (
            case((Source.status == SOURCE_STATUS_SPAM, Source.spam_since), else_=today())
            if status == SOURCE_STATUS_SPAM
            else None
        )
        session.execute(
            update(Source).where(Source.id.in_(ids)).values(status=status, spam_since=spam_since)
        )
    return len(ids)


def set_starred(session: Session, source_public_ids: Sequence[bytes], starred: bool) -> int:
    """Star or unstar each source; returns how many were found."""
    ids = _ids(session, source_public_ids)
    if ids:
        session.execute(update(Source).where(Source.id.in_(ids)).values(starred=starred))
    return len(ids)


def active_journalists(session: Session) -> list[Journalist]:
    """Journalists a source can be assigned to, by username."""
    return list(
        session.scalars(
            select(Journalist).where(Journalist.is_active).order_by(Journalist.username)
        )
    )


def set_assignee(
    session: Session, source_public_ids: Sequence[bytes], journalist_public_id: bytes | None
) -> int:
    """Assign each source to an active journalist (None: to no one); returns how many.

    ``LookupError`` if the journalist does not exist or is not active.
    """
    assignee = None
    if journalist_public_id is not None:
        assignee = session.scalar(
            select(Journalist.id).where(
                Journalist.public_id == journalist_public_id, Journalist.is_active
            )
        )
        if assignee is None:
            raise LookupError("no such active journalist")
    ids = _ids(session, source_public_ids)
    if ids:
        session.execute(update(Source).where(Source.id.in_(ids)).values(assignee_id=assignee))
    return len(ids)


def mark_read(session: Session, journalist_id: int, source_public_ids: Sequence[bytes]) -> int:
    """Mark every item of each source as read by the journalist; returns how many sources."""
    rows = session.execute(
        select(Source.id, Source.next_seq).where(Source.public_id.in_(list(source_public_ids)))
    ).all()
    for source_id, next_seq in rows:
        _upsert_marker(session, journalist_id, source_id, next_seq - 1)
    return len(rows)


def _upsert_marker(session: Session, journalist_id: int, source_id: int, seen_seq: int) -> None:
    # One statement, so that two requests marking the same source cannot collide.
    values = {"journalist_id": journalist_id, "source_id": source_id, "seen_seq": seen_seq}
    keys = [ReadMarker.journalist_id, ReadMarker.source_id]
    if session.get_bind().dialect.name == "postgresql":
        pg = pg_insert(ReadMarker).values(values)
        session.execute(pg.on_conflict_do_update(index_elements=keys, set_={"seen_seq": seen_seq}))
    else:
        lite = sqlite_insert(ReadMarker).values(values)
        session.execute(
            lite.on_conflict_do_update(index_elements=keys, set_={"seen_seq": seen_seq})
        )


def mark_unread(session: Session, journalist_id: int, source_public_ids: Sequence[bytes]) -> int:
    """Forget the journalist's read markers on each source; returns how many sources."""
    ids = _ids(session, source_public_ids)
    if ids:
        session.execute(
            delete(ReadMarker).where(
                ReadMarker.journalist_id == journalist_id, ReadMarker.source_id.in_(ids)
            )
        )
    return len(ids)


def refresh_last_source_seq(session: Session, source_id: int) -> None:
    """Recompute a source's ``last_source_seq`` after items were deleted."""
    newest = session.scalar(
        select(Item.seq)
        .where(Item.source_id == source_id, Item.kind.in_(SOURCE_KINDS))
        .order_by(Item.seq.desc())
        .limit(1)
    )
    session.execute(
        update(Source).where(Source.id == source_id).values(last_source_seq=newest or 0)
    )
