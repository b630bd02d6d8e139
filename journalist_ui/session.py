"""The journalist's split-key session: the ``tipbox_journalist_session`` cookie and its row.

The cookie holds the secret ``S`` (``tipbox.sessions``); the row holds, boxed, the
journalist's internal id, role, key seed and app data (``{"totp_pending": secret}`` while
a TOTP re-enrolment is under way). The session is opened once per request
(``journalist_ui.hooks``) and kept on ``flask.g``; the account a view acts on comes from
here only, never from a form field or a URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, request
from sqlalchemy.orm import Session

from tipbox import journalists, sessions
from tipbox.db import transaction
from tipbox.journalist_auth import ROLE_ADMIN, ROLE_JOURNALIST
from tipbox.journalists import AccountState
from tipbox.models import Journalist
from tipbox.web.cookies import cookie_policy

from .state import state

SESSION_COOKIE = "tipbox_journalist_session"
APP = sessions.JOURNALIST
TOTP_PENDING = "totp_pending"


def utc_now() -> datetime:
    """The current time, timezone-aware (``tipbox.sessions`` requires it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class JournalistSession:
    """An open journalist session. Neither the cookie nor the seed appears in ``repr``.

    ``seed`` is the journalist's key seed from the session box (DESIGN 4.6); views make
    the key pair from it for the request and keep it nowhere else.
    """

    cookie: str = field(repr=False)
    seed: bytes = field(repr=False)
    journalist_id: int
    role: str
    username: str
    must_change_passphrase: bool
    data: dict[str, Any] = field(repr=False)
    # ACTIVE sees content; FIRST_LOGIN only the account page (to take a new passphrase and
    # key); AWAITING_CONFIRMATION only the page with its key's fingerprint (hooks.py).
    state: AccountState = AccountState.ACTIVE

    @property
    def totp_pending(self) -> str | None:
        """The TOTP secret of a re-enrolment begun in this session, if any."""
        pending = self.data.get(TOTP_PENDING)
        return pending if isinstance(pending, str) else None


def current() -> JournalistSession | None:
    """The current request's open session, or None."""
    found: JournalistSession | None = g.get("journalist_session")
    return found


def ended() -> bool:
    """True when the request carried a session cookie whose session is gone."""
    return bool(g.get("journalist_session_ended", False))


def load() -> None:
    """Open the session named by the request's cookie, if any (once per request).

    A session whose account is gone, inactive, key-less or of another role now, or whose
    contents are not what this app writes, is deleted, as after an expiry.
    """
    g.journalist_session = None
    g.journalist_session_ended = False
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return
    with transaction(state().db) as db:
        opened = sessions.load(db, APP, cookie, utc_now())
        found = None if opened is None else _check(db, cookie, opened)
        if opened is not None and found is None:
            sessions.destroy(db, cookie)
    if found is None:
        g.journalist_session_ended = True
        g.journalist_cookie = None  # drop the dead cookie
    else:
        g.journalist_session = found


def start(db: Session, cookie: str) -> None:
    """Record a session just made by ``journalist_auth.login``, ending the request's old one."""
    old = current()
    if old is not None:
        sessions.destroy(db, old.cookie)
    g.journalist_session = None
    g.journalist_cookie = cookie


def save_data(db: Session, data: dict[str, Any]) -> bool:
    """Replace the current session's app data; False if its row has gone meanwhile."""
    now = current()
    if now is None:
        return False
    return sessions.update(db, APP, now.cookie, data, utc_now()) is not None


def end(db: Session) -> None:
    """End the current session (logout): its row is deleted and its cookie cleared."""
    now = current()
    cookie = now.cookie if now is not None else request.cookies.get(SESSION_COOKIE)
    if cookie:
        sessions.destroy(db, cookie)
    g.journalist_session = None
    g.journalist_cookie = None


def write_cookie(response: Response) -> Response:
    """Set or clear the session cookie if this request started or ended a session."""
    if "journalist_cookie" not in g:
        return response
    kwargs = cookie_policy("journalist", state().config).set_cookie_kwargs()
    value: str | None = g.journalist_cookie
    if value is None:
        response.delete_cookie(SESSION_COOKIE, **kwargs)
    else:
        # No expiry: the cookie ends with the browser session; the row expires on its own.
        response.set_cookie(SESSION_COOKIE, value, **kwargs)
    return response


def _check(db: Session, cookie: str, opened: sessions.SessionData) -> JournalistSession | None:
    """The session if its account still exists, is active and has the session's role."""
    user = opened.user
    if isinstance(user, bool) or not isinstance(user, int) or opened.key_seed is None:
        return None
    row = db.get(Journalist, user, populate_existing=True)
    if row is None or not journalists.may_log_in(row):
        return None
    role = ROLE_ADMIN if row.is_admin else ROLE_JOURNALIST
    if opened.role != role:
        return None
    return JournalistSession(
        cookie=cookie,
        seed=opened.key_seed,
        journalist_id=row.id,
        role=role,
        username=row.username,
        must_change_passphrase=row.must_change_passphrase,
        data=dict(opened.data),
        state=journalists.state_of(row),
    )
