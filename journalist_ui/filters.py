"""The inbox's query string: parsed into a ``listing.InboxQuery``, and written back for links.

Every filter is a GET parameter, so a filtered inbox is a plain link that works without
JavaScript and can be bookmarked:

``q``         designation part or exact tag
``status``    ``new``, ``review``, ``verified``, ``published``, ``closed``, ``spam``, or
              ``all`` (spam included); absent: every status but spam
``starred``   ``1``
``unread``    ``1``: sources with items this journalist has not read
``assignee``  ``me``, ``none``, or a journalist's public id (32 hex digits)
``tag``       a tag, as shown
``sort``      ``activity`` (default, newest first), ``oldest``, ``unread``, ``designation``
``page``      1 to 1,000,000

A value outside these is a 400: a hand-edited URL gets a clear answer, not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from tipbox.crypto.tags import MetadataKeys
from tipbox.models import Journalist
from tipbox.tagging import index_of
from tipbox.triage import STATUS_BY_NAME

from .listing import MAX_QUERY_CHARS, SORTS, InboxQuery, Sort

_PUBLIC_ID: Final = re.compile(r"[0-9a-f]{32}")
# An assignee no source can have: the filter then matches nothing.
_NOBODY: Final = -1


@dataclass(frozen=True)
class Filters:
    """The inbox parameters as given (normalised), for the form and for links."""

    q: str = ""
    status: str = ""
    starred: bool = False
    unread: bool = False
    assignee: str = ""
    tag: str = ""
    sort: str = "activity"
    page: int = 1

    def args(self, **changes: object) -> dict[str, Any]:
        """URL parameters for this view (with ``changes``), defaults left out."""
        values: dict[str, object] = {
            "q": self.q,
            "status": self.status,
            "starred": "1" if self.starred else "",
            "unread": "1" if self.unread else "",
            "assignee": self.assignee,
            "tag": self.tag,
            "sort": self.sort,
            "page": self.page,
        }
        values.update(changes)
        defaults = {"sort": "activity", "page": 1}
        return {
            key: str(value)
            for key, value in values.items()
            if value not in ("", None, False) and defaults.get(key) != value
        }

    @property
    def narrowed(self) -> bool:
        """Whether anything narrows the list (a "show everything" link is offered then)."""
        return any((self.q, self.status, self.starred, self.unread, self.assignee, self.tag))


def _flag(args: Mapping[str, str], name: str) -> bool:
    value = args.get(name, "")
    if value not in ("", "1"):
        raise BadRequest()
    return value == "1"


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Read the inbox parameters from a request's query string (``BadRequest`` if invalid)."""
    status = args.get("status", "")
    if status not in ("", "all", *STATUS_BY_NAME):
        raise BadRequest()
    assignee = args.get("assignee", "")
    if assignee not in ("", "me", "none") and not _PUBLIC_ID.fullmatch(assignee):
        raise BadRequest()
    sort = args.get("sort", "activity") or "activity"
    if sort not in SORTS:
        raise BadRequest()
    page = args.get("page", "1") or "1"
    # isascii: "²" is a digit to isdigit() but not to int().
    if not (page.isascii() and page.isdigit()) or not 1 <= int(page) <= 1_000_000:
        raise BadRequest()
    return Filters(
        q=args.get("q", "")[:MAX_QUERY_CHARS],
        status=status,
        starred=_flag(args, "starred"),
        unread=_flag(args, "unread"),
        assignee=assignee,
        tag=args.get("tag", "")[:MAX_QUERY_CHARS],
        sort=sort,
        page=int(page),
    )


def _assignee_id(session: Session, me: int, assignee: str) -> int | None:
    if assignee == "":
        return None
    if assignee == "me":
        return me
    if assignee == "none":
        return 0
    found = session.scalar(
        select(Journalist.id).where(Journalist.public_id == bytes.fromhex(assignee))
    )
    return _NOBODY if found is None else found


def inbox_query(
    session: Session, me: int, filters: Filters, keys: MetadataKeys | None
) -> InboxQuery:
    """The listing query for ``filters``; tag filters need the metadata ``keys``."""
    tag_index = None
    if filters.tag:
        # Without the key (tags not set up yet) or for text that is no tag, match nothing.
        tag_index = (index_of(keys, filters.tag) if keys else None) or bytes(32)
    sort: Sort = "activity"
    for known in SORTS:
        if known == filters.sort:
            sort = known
    return InboxQuery(
        page=filters.page,
        search=filters.q,
        search_index=index_of(keys, filters.q) if keys and filters.q.strip() else None,
        status=STATUS_BY_NAME.get(filters.status),
        all_statuses=filters.status == "all",
        starred=filters.starred,
        unread=filters.unread,
        assignee=_assignee_id(session, me, filters.assignee),
        tag_index=tag_index,
        sort=sort,
    )
