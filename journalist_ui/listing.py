"""The inbox listing: sources with their triage columns, filtered, sorted, counted, paged.

Only what the database holds in clear (DESIGN 2.5) is filtered and sorted on: last day of
activity, status, star, assignee, read markers and tags' blind indexes; tags themselves
are opened only for the rows on the page. A source is listed once it has had an item
(``next_seq > 1``): a codename made and never used has nothing to read, and retention
removes it. Spam is left out unless asked for.

Each page is three small queries, whatever the size of the instance: the page of sources
(indexed on last activity, status and assignee), the item and unread counts of those 50
sources (the ``(source_id, seq)`` unique index), and the counts for the filter bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final, Literal

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session

from tipbox.models import SOURCE_STATUS_SPAM, Item, Journalist, ReadMarker, Source
from tipbox.tagging import has_tag
from tipbox.triage import SOURCE_KINDS

PAGE_SIZE: Final = 50
# A search longer than this is neither a designation (two words) nor a tag.
MAX_QUERY_CHARS: Final = 100
Sort = Literal["activity", "oldest", "unread", "designation"]
SORTS: Final[tuple[Sort, ...]] = ("activity", "oldest", "unread", "designation")


@dataclass(frozen=True)
class InboxQuery:
    """What the journalist asked the inbox for. ``None`` means "no filter".

    ``status`` is a ``SOURCE_STATUS_*`` value, or None for every status but spam;
    ``all_statuses`` shows spam too. ``assignee`` is a journalist's row id, or 0 for
    "assigned to no one". ``tag_index`` is the blind index of the tag asked for, and
    ``search_index`` that of the search text if it can be a tag.
    """

    page: int = 1
    search: str = ""
    search_index: bytes | None = None
    status: int | None = None
    all_statuses: bool = False
    starred: bool = False
    unread: bool = False
    assignee: int | None = None
    tag_index: bytes | None = None
    sort: Sort = "activity"


@dataclass(frozen=True)
class SourceRow:
    """One line of the inbox (tags are filled in by the caller, who holds the key)."""

    id: int
    public_id: bytes
    designation: str
    last_active_on: date
    items: int
    unread: int
    status: int
    starred: bool
    assignee: str | None
    # What the source's items take in the blob store (its messages, files, and replies).
    stored_bytes: int = 0
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InboxPage:
    """One page of the inbox (1-based ``page``) and how many sources match in all."""

    rows: list[SourceRow]
    page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the matching sources fill (at least one)."""
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def has_next(self) -> bool:
        """Whether a later page exists."""
        return self.page < self.pages


@dataclass(frozen=True)
class InboxCounts:
    """The numbers of the filter bar: per status, and unread, starred and mine."""

    by_status: dict[int, int]
    unread: int
    starred: int
    mine: int

    @property
    def not_spam(self) -> int:
        """Listed sources of every status but spam."""
        return sum(n for status, n in self.by_status.items() if status != SOURCE_STATUS_SPAM)


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _seen() -> ColumnElement[int]:
    # With the read markers outer-joined: no marker means nothing read.
    return func.coalesce(ReadMarker.seen_seq, 0)


def _base(journalist_id: int) -> Select[int]:
    """Listed sources, joined to this journalist's read markers."""
    return (
        select(Source.id)
        .outerjoin(
            ReadMarker,
            and_(ReadMarker.source_id == Source.id, ReadMarker.journalist_id == journalist_id),
        )
        .where(Source.next_seq > 1)
    )


def _filtered(journalist_id: int, query: InboxQuery) -> Select[int]:
    found = _base(journalist_id)
    if query.status is not None:
        found = found.where(Source.status == query.status)
    elif not query.all_statuses:
        found = found.where(Source.status != SOURCE_STATUS_SPAM)
    if query.starred:
        found = found.where(Source.starred)
    if query.unread:
        found = found.where(Source.last_source_seq > _seen())
    if query.assignee == 0:
        found = found.where(Source.assignee_id.is_(None))
    elif query.assignee is not None:
        found = found.where(Source.assignee_id == query.assignee)
    if query.tag_index is not None:
        found = found.where(has_tag(query.tag_index))
    search = query.search.strip()[:MAX_QUERY_CHARS]
    if search:
        by_name = Source.designation.ilike(_like_pattern(search), escape="\\")
        if query.search_index is not None:
            found = found.where(by_name | has_tag(query.search_index))
        else:
            found = found.where(by_name)
    return found


def _ordered(found: Select[int], sort: Sort) -> Select[int]:
    match sort:
        case "oldest":
            return found.order_by(Source.last_active_on.asc(), Source.id.asc())
        case "designation":
            return found.order_by(Source.designation.asc(), Source.id.asc())
        case "unread":
            has_unread = case((Source.last_source_seq > _seen(), 0), else_=1)
            return found.order_by(has_unread, Source.last_active_on.desc(), Source.id.desc())
        case _:
            return found.order_by(Source.last_active_on.desc(), Source.id.desc())


def inbox_page(session: Session, journalist_id: int, query: InboxQuery) -> InboxPage:
    """The page ``query.page`` of the sources matching ``query``, as ``journalist_id`` sees it."""
    filtered = _filtered(journalist_id, query)
    total = session.scalar(select(func.count()).select_from(filtered.subquery())) or 0
    ids = list(
        session.scalars(
            _ordered(filtered, query.sort).offset((query.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
        )
    )
    return InboxPage(_rows(session, journalist_id, ids), query.page, total)


def _rows(session: Session, journalist_id: int, ids: list[int]) -> list[SourceRow]:
    if not ids:
        return []
    seen = (
        select(ReadMarker.seen_seq)
        .where(ReadMarker.source_id == Item.source_id, ReadMarker.journalist_id == journalist_id)
        .scalar_subquery()
    )
    unread = case(
        (and_(Item.kind.in_(SOURCE_KINDS), Item.seq > func.coalesce(seen, 0)), 1), else_=0
    )
    counts = {
        source_id: (int(n), int(u or 0), int(size or 0))
        for source_id, n, u, size in session.execute(
            select(Item.source_id, func.count(Item.id), func.sum(unread), func.sum(Item.blob_size))
            .where(Item.source_id.in_(ids))
            .group_by(Item.source_id)
        )
    }
    found = {
        row.id: row
        for row in session.execute(
            select(
                Source.id,
                Source.public_id,
                Source.designation,
                Source.last_active_on,
                Source.status,
                Source.starred,
                Journalist.username,
            )
            .outerjoin(Journalist, Journalist.id == Source.assignee_id)
            .where(Source.id.in_(ids))
        )
    }
    rows = []
    for source_id in ids:
        row = found[source_id]
        items, unread_items, stored = counts.get(source_id, (0, 0, 0))
        rows.append(
            SourceRow(
                source_id,
                row.public_id,
                row.designation or "",
                row.last_active_on,
                items,
                unread_items,
                row.status,
                bool(row.starred),
                row.username,
                stored,
            )
        )
    return rows


def inbox_counts(session: Session, journalist_id: int) -> InboxCounts:
    """Listed sources per status; and, spam aside, unread for this journalist, starred, mine."""
    by_status = {
        status: int(n)
        for status, n in session.execute(
            select(Source.status, func.count()).where(Source.next_seq > 1).group_by(Source.status)
        )
    }
    not_spam = _base(journalist_id).where(Source.status != SOURCE_STATUS_SPAM)

    def count(extra: ColumnElement[bool]) -> int:
        return (
            session.scalar(select(func.count()).select_from(not_spam.where(extra).subquery())) or 0
        )

    return InboxCounts(
        by_status,
        count(Source.last_source_seq > _seen()),
        count(Source.starred.is_(True)),
        count(Source.assignee_id == journalist_id),
    )


@dataclass(frozen=True)
class SourceTriage:
    """A source's triage state, as its page shows it."""

    id: int
    designation: str
    status: int
    starred: bool
    assignee_id: int | None


def source_triage(session: Session, source_public_id: bytes) -> SourceTriage | None:
    """The triage state of a source, or None if there is no such source."""
    found = session.execute(
        select(
            Source.id, Source.designation, Source.status, Source.starred, Source.assignee_id
        ).where(Source.public_id == source_public_id)
    ).one_or_none()
    if found is None:
        return None
    return SourceTriage(
        found.id, found.designation or "", found.status, bool(found.starred), found.assignee_id
    )


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
