"""The source's split-key session: the ``tipbox_source_session`` cookie and its row.

The cookie holds the secret ``S`` (``tipbox.sessions``); the row holds, boxed, the source's
public id, its reply key seed and ``{"confirmed": bool, "issued": [...]}`` (plus, for one
page view after a submission, what was received). The codename is never part of it.

The session is opened once per request, before the CSRF check and before a form is
parsed (``tipbox.source.hooks``), and kept on ``flask.g``. Views that start or end a
session record the cookie change here; ``write_cookie`` applies it to the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import sessions
from tipbox.db import transaction
from tipbox.models import Source
from tipbox.web.cookies import cookie_policy

from .state import state

SESSION_COOKIE = "tipbox_source_session"
APP = sessions.SOURCE
ROLE = "source"
# Item ids a session keeps issued: a few submit pages' worth, so that two open tabs both
# work, and bounded so that the box stays small.
ISSUED_PAGES_KEPT = 4

_HEX32 = re.compile(r"[0-9a-f]{32}")


def utc_now() -> datetime:
    """The current time, timezone-aware (``tipbox.sessions`` requires it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SourceSession:
    """An open source session. Neither the cookie nor the seed appears in ``repr``."""

    cookie: str = field(repr=False)
    public_id: bytes
    seed: bytes = field(repr=False)
    confirmed: bool
    issued: tuple[str, ...]
    # (messages, files) of the submission just received, shown once on the submit page.
    receipt: tuple[int, int] | None = None

    @property
    def public_id_hex(self) -> str:
        """The source's public id as 32 hex digits (the session's ``user``)."""
        return self.public_id.hex()

    def data(self) -> dict[str, Any]:
        """The session's app data, as stored in the box."""
        stored: dict[str, Any] = {"confirmed": self.confirmed, "issued": list(self.issued)}
        if self.receipt is not None:
            stored["receipt"] = list(self.receipt)
        return stored


def current() -> SourceSession | None:
    """The current request's open session, or None."""
    found: SourceSession | None = g.get("source_session")
    return found


def ended() -> bool:
    """True when the request carried a session cookie whose session is gone (expired)."""
    return bool(g.get("source_session_ended", False))


def load() -> None:
    """Open the session named by the request's cookie, if any (once per request).

    A session whose source no longer exists, or whose contents are not what this app
    writes, is deleted: the request then goes on without one, as after an expiry.
    """
    g.source_session = None
    g.source_session_ended = False
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return
    with transaction(state().db) as db:
        opened = sessions.load(db, APP, cookie, utc_now())
        found = None if opened is None else _parse(cookie, opened)
        if found is not None and not _source_exists(db, found.public_id):
            found = None
        if opened is not None and found is None:
            sessions.destroy(db, cookie)
    if found is None:
        g.source_session_ended = True
        g.source_cookie = None  # drop the dead cookie
    else:
        g.source_session = found


def start(db: Session, public_id: bytes, seed: bytes, *, confirmed: bool) -> SourceSession:
    """Begin a new session (a new ``S``) for a source, ending the request's old one.

    Runs in the caller's transaction; the cookie is set on the response by ``write_cookie``.
    """
    old = current()
    if old is not None:
        sessions.destroy(db, old.cookie)
    config = state().config
    started = SourceSession(
        cookie="", public_id=public_id, seed=seed, confirmed=confirmed, issued=()
    )
    cookie = sessions.create(
        db,
        APP,
        public_id.hex(),
        ROLE,
        seed,
        started.data(),
        config.source_session_idle_seconds,
        config.source_session_absolute_seconds,
        utc_now(),
    )
    started = replace(started, cookie=cookie)
    g.source_session = started
    g.source_cookie = cookie
    return started


def save(db: Session, changed: SourceSession) -> bool:
    """Store ``changed`` (made with ``dataclasses.replace`` from ``current()``) in its row.

    Returns False, and forgets the session, when its row has gone in the meantime.
    """
    if sessions.update(db, APP, changed.cookie, changed.data(), utc_now()) is None:
        g.source_session = None
        return False
    g.source_session = changed
    return True


def end(db: Session) -> None:
    """End the current session (logout): its row is deleted and its cookie cleared."""
    now = current()
    cookie = now.cookie if now is not None else request.cookies.get(SESSION_COOKIE)
    if cookie:
        sessions.destroy(db, cookie)
    g.source_session = None
    g.source_cookie = None


def write_cookie(response: Response) -> Response:
    """Set or clear the session cookie if this request started or ended a session."""
    if "source_cookie" not in g:
        return response
    kwargs = cookie_policy("source", state().config).set_cookie_kwargs()
    value: str | None = g.source_cookie
    if value is None:
        response.delete_cookie(SESSION_COOKIE, **kwargs)
    else:
        # No expiry: the cookie ends with the browser session; the row expires on its own.
        response.set_cookie(SESSION_COOKIE, value, **kwargs)
    return response


def _parse(cookie: str, opened: sessions.SessionData) -> SourceSession | None:
    data = opened.data
    user = opened.user
    if opened.role != ROLE or not isinstance(user, str) or not _HEX32.fullmatch(user):
        return None
    if opened.key_seed is None:
        return None
    confirmed = data.get("confirmed")
    issued = data.get("issued")
    if not isinstance(confirmed, bool) or not isinstance(issued, list):
        return None
    if not all(isinstance(item, str) and _HEX32.fullmatch(item) for item in issued):
        return None
    receipt = data.get("receipt")
    parsed_receipt: tuple[int, int] | None = None
    if isinstance(receipt, list) and len(receipt) == 2 and all(type(n) is int for n in receipt):
        parsed_receipt = (receipt[0], receipt[1])
    return SourceSession(
        cookie=cookie,
        public_id=bytes.fromhex(user),
        seed=opened.key_seed,
        confirmed=confirmed,
        issued=tuple(issued),
        receipt=parsed_receipt,
    )


def _source_exists(db: Session, public_id: bytes) -> bool:
    # tipbox.sessions asks every caller to check that the session's user still exists: a
    # journalist may have deleted the source since.
    return db.scalar(select(Source.id).where(Source.public_id == public_id)) is not None
