"""Split-key sessions, shared by the source app and the journalist app (DESIGN 4.6).

The browser's cookie holds a random secret ``S``; the ``sessions`` row, found by a
derivation of ``S``, holds the payload (user, role, key seed, app data) in a box whose key
is another derivation of ``S`` (``tipbox.crypto.sessionbox``, docs/envelope.md 9). Neither
half alone opens anything: a copy of the database has no ``S``, a stolen cookie has no box
once the row is gone. Each login makes a new ``S``; logout deletes the row.

Every function runs in the caller's transaction and does not commit: a web request wraps its
work in ``tipbox.db.transaction``. Time is always passed in (``now``, timezone-aware UTC),
so tests control it. The row keeps, in clear, its app, its idle window and its idle and
absolute expiry times, so that expired rows can be purged without ``S``.

**Finding a user's sessions.** Removing a journalist, resetting their credentials or
changing their passphrase must end their other sessions, without their ``S``. Journalist
rows therefore carry the journalist's internal id in clear (``journalist_id``, a foreign
key with ``ON DELETE CASCADE``, so removing the account removes its sessions in the same
statement). That is acceptable for journalists: the database already names them, their
per-day actions are in the audit log, and a session row only adds that a given staff member
has a live session, which a live attacker sees anyway. A hash of the id would hide
nothing (ids are few and enumerable), and a keyed tag would need a server key that sits
beside the database in the embedded install.

Source rows are never linked to their source, in clear or by a tag: a row's expiry times
are precise to the second, and linking them to a source would record when that source was
active, which invariant 5 forbids (items are dated per day). Nothing needs the link: a
source's sessions hold only that source's own reply key, and expire within hours. When a
source is deleted, the source app notices at the next request because ``load`` returns the
user and the app checks that it still exists. ``destroy_all_for_user`` therefore refuses
``app="source"``.

Callers must check on every request that the returned user still exists, is active and
still has the returned role (an admin may have been demoted), and end the session if not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session

from tipbox.crypto import sessionbox
from tipbox.crypto.errors import Rejected
from tipbox.models import SessionRow

SOURCE = "source"
JOURNALIST = "journalist"
APPS = (SOURCE, JOURNALIST)


@dataclass(frozen=True)
class SessionData:
    """An opened session. ``key_seed`` never appears in ``repr`` (nor in logs)."""

    app: str
    user: int | str
    role: str
    key_seed: bytes | None = field(repr=False)
    data: dict[str, Any]
    idle_expires_at: datetime
    absolute_expires_at: datetime


def create(
    db_session: Session,
    app: str,
    user: int | str,
    role: str,
    key_seed: bytes | None,
    data: Mapping[str, Any],
    idle_seconds: int,
    absolute_seconds: int,
    now: datetime,
) -> str:
    """Start a session and return the cookie value (the encoded secret ``S``).

    For the journalist app ``user`` is the journalist's internal id (``journalists.id``);
    for the source app it is whatever the source app identifies the source by, and it is
    stored only inside the box. ``key_seed`` is the 32-byte seed the session unlocks
    (a journalist's key seed, a source's reply key seed) or None.
    """
    _check_app(app)
    _check_now(now)
    if idle_seconds <= 0 or absolute_seconds <= 0:
        raise ValueError("session lifetimes must be positive")
    journalist_id: int | None = None
    if app == JOURNALIST:
        if isinstance(user, bool) or not isinstance(user, int):
            raise ValueError("a journalist session's user is the journalist's integer id")
        journalist_id = user
    secret = sessionbox.new_secret()
    payload = sessionbox.Payload(user=user, role=role, key=key_seed, data=dict(data))
    absolute = now + timedelta(seconds=absolute_seconds)
    row = SessionRow(
        id=sessionbox.row_id_hex(secret),
        app=app,
        journalist_id=journalist_id,
        box=sessionbox.seal(secret, app, sessionbox.encode_payload(payload)),
        idle_seconds=idle_seconds,
        idle_expires_at=min(now + timedelta(seconds=idle_seconds), absolute),
        absolute_expires_at=absolute,
    )
    db_session.add(row)
    db_session.flush()
    return sessionbox.encode_cookie(secret)


# How far the idle expiry must move before ``load`` writes it.
IDLE_REFRESH = timedelta(seconds=60)


def load(db_session: Session, app: str, cookie: str, now: datetime) -> SessionData | None:
    """Open the session named by ``cookie`` and push its idle expiry forward.

    Returns None when there is no such session (a malformed cookie, no row, a row of the
    other app). A row that has expired, whose box does not open, or whose clear columns
    disagree with its box is deleted, and None returned.
    """
    _check_app(app)
    _check_now(now)
    found = _open(db_session, app, cookie, now)
    if found is None:
        return None
    row, payload = found
    pushed = min(now + timedelta(seconds=row.idle_seconds), row.absolute_expires_at)
    # At most once a minute: most requests then write nothing, which on SQLite spares a
    # synced commit per page. The idle timeout is thereby exact to within that minute.
    if pushed - row.idle_expires_at >= IDLE_REFRESH:
        row.idle_expires_at = pushed
        db_session.flush()
    return _data(row, payload)


def update(
    db_session: Session, app: str, cookie: str, data: Mapping[str, Any], now: datetime
) -> SessionData | None:
    """Replace the session's app data (re-boxed under a fresh nonce); None if it is gone."""
    _check_app(app)
    _check_now(now)
    found = _open(db_session, app, cookie, now)
    if found is None:
        return None
    row, payload = found
    secret = sessionbox.decode_cookie(cookie)
    payload = sessionbox.Payload(
        user=payload.user, role=payload.role, key=payload.key, data=dict(data)
    )
    row.box = sessionbox.seal(secret, app, sessionbox.encode_payload(payload))
    row.idle_expires_at = min(now + timedelta(seconds=row.idle_seconds), row.absolute_expires_at)
    db_session.flush()
    return _data(row, payload)


def destroy(db_session: Session, cookie: str) -> bool:
    """Delete the session named by ``cookie`` (logout). Returns whether a row was deleted."""
    try:
        row_id = sessionbox.row_id_hex(sessionbox.decode_cookie(cookie))
    except Rejected:
        return False
    return _delete_where(db_session, SessionRow.id == row_id) > 0


def destroy_all_for_user(
    db_session: Session, app: str, user: int | str, except_cookie: str | None = None
) -> int:
    """Delete every session of a journalist, except the one named by ``except_cookie``.

    Only journalist sessions can be found by user (see the module docstring); ``app`` must
    be ``"journalist"`` and ``user`` the journalist's internal id. Returns how many rows
    were deleted.
    """
    _check_app(app)
    if app != JOURNALIST:
        raise ValueError("source sessions are not linked to their source; they cannot be listed")
    if isinstance(user, bool) or not isinstance(user, int):
        raise ValueError("a journalist session's user is the journalist's integer id")
    condition = (SessionRow.app == JOURNALIST) & (SessionRow.journalist_id == user)
    if except_cookie is not None:
        try:
            keep = sessionbox.row_id_hex(sessionbox.decode_cookie(except_cookie))
        except Rejected:
            pass
        else:
            condition = condition & (SessionRow.id != keep)
    return _delete_where(db_session, condition)


def purge_expired(db_session: Session, now: datetime) -> int:
    """Delete every session whose idle or absolute expiry has passed; return the count."""
    _check_now(now)
    return _delete_where(
        db_session,
        or_(SessionRow.idle_expires_at <= now, SessionRow.absolute_expires_at <= now),
    )


def _open(
    db_session: Session, app: str, cookie: str, now: datetime
) -> tuple[SessionRow, sessionbox.Payload] | None:
    try:
        secret = sessionbox.decode_cookie(cookie)
    except Rejected:
        return None
    row = db_session.get(SessionRow, sessionbox.row_id_hex(secret), populate_existing=True)
    if row is None or row.app != app:
        # A row of the other app is not this app's to judge: leave it alone.
        return None
    if now >= row.idle_expires_at or now >= row.absolute_expires_at:
        _discard(db_session, row)
        return None
    try:
        payload = sessionbox.decode_payload(sessionbox.open_box(secret, app, row.box))
    except Rejected:
        _discard(db_session, row)
        return None
    # The clear link must say what the box says (a journalist row), or nothing (a source row).
    if app == JOURNALIST:
        user = payload.user
        consistent = isinstance(user, int) and not isinstance(user, bool)
        consistent = consistent and row.journalist_id == user
    else:
        consistent = row.journalist_id is None
    if not consistent:
        _discard(db_session, row)
        return None
    return row, payload


def _discard(db_session: Session, row: SessionRow) -> None:
    db_session.delete(row)
    db_session.flush()


def _delete_where(db_session: Session, condition: Any) -> int:
    result = db_session.execute(
        delete(SessionRow).where(condition).execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _data(row: SessionRow, payload: sessionbox.Payload) -> SessionData:
    return SessionData(
        app=row.app,
        user=payload.user,
        role=payload.role,
        key_seed=payload.key,
        data=payload.data,
        idle_expires_at=row.idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
    )


def _check_app(app: str) -> None:
    if app not in APPS:
        raise ValueError(f"unknown session app {app!r}")


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
