"""The inbox listing: sources with their clear-text triage columns and item counts.

Only what the database holds in clear (DESIGN 2.5): designation, day of last activity,
status, star and the number of items. Sources without any item (a codename made but never
used) have nothing to read and are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox.models import Item, Source

PAGE_SIZE: Final = 50
# A search longer than this is not a designation (two words).
MAX_QUERY_CHARS: Final = 100


@dataclass(frozen=True)
class SourceRow:
    """One line of the inbox."""

    public_id: bytes
    designation: str
    last_active_on: date
    items: int
    status: int
    starred: bool


@dataclass(frozen=True)
class InboxPage:
    """One page of the inbox (1-based ``page``)."""

    rows: list[SourceRow]
    page: int
    has_next: bool


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def inbox_page(session: Session, page: int, search: str) -> InboxPage:
    """Sources with items, newest activity first, ``PAGE_SIZE`` a page, optionally only
    those whose designation contains ``search`` (case-insensitive)."""
    counts = (
        select(Item.source_id, func.count(Item.id).label("n")).group_by(Item.source_id).subquery()
    )
    query = select(
        Source.public_id,
        Source.designation,
        Source.last_active_on,
        counts.c.n,
        Source.status,
        Source.starred,
    ).join(counts, counts.c.source_id == Source.id)
    search = search.strip()[:MAX_QUERY_CHARS]
    if search:
        query = query.where(Source.designation.ilike(_like_pattern(search), escape="\\"))
    found = session.execute(
        query.order_by(Source.last_active_on.desc(), Source.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
    ).all()
    rows = [
        SourceRow(public_id, designation or "", last, int(n), status, starred)
        for public_id, designation, last, n, status, starred in found[:PAGE_SIZE]
    ]
    return InboxPage(rows, page, len(found) > PAGE_SIZE)


def source_designation(session: Session, source_public_id: bytes) -> str | None:
    """A source's designation ("" if it has none), or None if there is no such source."""
    found = session.execute(
        select(Source.designation).where(Source.public_id == source_public_id)
    ).one_or_none()
    return None if found is None else (found[0] or "")


def source_of_item(session: Session, item_public_id: bytes) -> bytes | None:
    """The public id of the source an item belongs to, or None if there is no such item."""
    return session.scalar(
        select(Source.public_id)
        .join(Item, Item.source_id == Source.id)
        .where(Item.public_id == item_public_id)
    )
