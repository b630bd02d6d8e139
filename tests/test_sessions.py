"""Split-key sessions (DESIGN 4.6): expiry, logout, tampering, and what each half opens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tipbox import sessions
from tipbox.crypto import sessionbox
from tipbox.crypto.errors import Rejected
from tipbox.models import Journalist, SessionRow

T0 = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
IDLE = 30 * 60
ABSOLUTE = 2 * 3600
SEED = bytes(range(32))


def _journalist(db: Session, username: str = "aigerim") -> int:
    journalist = Journalist(
        username=username,
        kdf_salt=bytes(16),
        kdf_opslimit=1,
        kdf_memlimit=8 << 20,
        verifier=bytes(32),
    )
    db.add(journalist)
    db.flush()
    return journalist.id


def _login(db: Session, user: int, now: datetime = T0, **data: object) -> str:
    return sessions.create(db, "journalist", user, "journalist", SEED, data, IDLE, ABSOLUTE, now)


def _count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(SessionRow)) or 0


def _row(db: Session, cookie: str) -> SessionRow:
    row_id = sessionbox.row_id_hex(sessionbox.decode_cookie(cookie))
    row = db.get(SessionRow, row_id, populate_existing=True)
    assert row is not None
    return row


def test_create_and_load(db: Session) -> None:
    user = _journalist(db)
    cookie = _login(db, user, csrf="token")
    db.commit()
    loaded = sessions.load(db, "journalist", cookie, T0 + timedelta(minutes=1))
    assert loaded is not None
    assert loaded.user == user
    assert loaded.role == "journalist"
    assert loaded.key_seed == SEED
    assert loaded.data == {"csrf": "token"}
    assert loaded.app == "journalist"
    assert SEED.hex() not in repr(loaded)


def test_source_session(db: Session) -> None:
    public_id = "3f2a9b01c4d5e6f708192a3b4c5d6e7f"
    cookie = sessions.create(db, "source", public_id, "source", SEED, {}, 7200, 6 * 3600, T0)
    row = _row(db, cookie)
    assert row.app == "source"
    assert row.journalist_id is None  # not linked to the source in clear
    assert public_id.encode() not in row.box
    loaded = sessions.load(db, "source", cookie, T0)
    assert loaded is not None
    assert loaded.user == public_id
    # The other app does not know this session, and leaves it alone.
    assert sessions.load(db, "journalist", cookie, T0) is None
    assert _count(db) == 1


def test_idle_expiry(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    # Each use pushes the idle expiry forward.
    for minutes in (20, 40, 60):
        loaded = sessions.load(db, "journalist", cookie, T0 + timedelta(minutes=minutes))
        assert loaded is not None
        assert loaded.idle_expires_at == T0 + timedelta(minutes=minutes, seconds=IDLE)
    db.commit()
    assert sessions.load(db, "journalist", cookie, T0 + timedelta(minutes=60 + 30)) is None
    assert _count(db) == 0


def test_absolute_expiry(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    now = T0
    while now + timedelta(minutes=20) < T0 + timedelta(seconds=ABSOLUTE):
        now += timedelta(minutes=20)
        loaded = sessions.load(db, "journalist", cookie, now)
        assert loaded is not None
        # The idle window never reaches past the absolute expiry.
        assert loaded.idle_expires_at <= T0 + timedelta(seconds=ABSOLUTE)
    assert sessions.load(db, "journalist", cookie, T0 + timedelta(seconds=ABSOLUTE)) is None
    assert _count(db) == 0


def test_logout_destroys_the_row(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    assert sessions.destroy(db, cookie) is True
    assert _count(db) == 0
    assert sessions.load(db, "journalist", cookie, T0) is None
    assert sessions.destroy(db, cookie) is False
    assert sessions.destroy(db, "not a cookie") is False


def test_each_login_is_a_new_secret(db: Session) -> None:
    user = _journalist(db)
    first, second = _login(db, user), _login(db, user)
    assert first != second
    assert _row(db, first).id != _row(db, second).id


def test_update(db: Session) -> None:
    cookie = _login(db, _journalist(db), step=1)
    box = _row(db, cookie).box
    updated = sessions.update(db, "journalist", cookie, {"step": 2}, T0 + timedelta(minutes=5))
    assert updated is not None
    assert updated.data == {"step": 2}
    assert updated.key_seed == SEED
    assert _row(db, cookie).box != box
    loaded = sessions.load(db, "journalist", cookie, T0 + timedelta(minutes=6))
    assert loaded is not None
    assert loaded.data == {"step": 2}
    sessions.destroy(db, cookie)
    assert sessions.update(db, "journalist", cookie, {}, T0) is None


@pytest.mark.parametrize("where", ["tag", "nonce", "ciphertext", "truncated"])
def test_tampered_box_is_refused_and_deleted(db: Session, where: str) -> None:
    cookie = _login(db, _journalist(db))
    row = _row(db, cookie)
    box = bytearray(row.box)
    if where == "tag":
        box[-1] ^= 0x01
    elif where == "nonce":
        box[0] ^= 0x01
    elif where == "ciphertext":
        box[30] ^= 0x01
    else:
        box = box[:30]
    db.execute(update(SessionRow).where(SessionRow.id == row.id).values(box=bytes(box)))
    db.commit()
    assert sessions.load(db, "journalist", cookie, T0) is None
    db.commit()
    assert _count(db) == 0


def test_box_moved_between_rows_is_refused(db: Session) -> None:
    user = _journalist(db)
    mine, theirs = _login(db, user), _login(db, user)
    their_box = _row(db, theirs).box
    db.execute(update(SessionRow).where(SessionRow.id == _row(db, mine).id).values(box=their_box))
    assert sessions.load(db, "journalist", mine, T0) is None
    assert _count(db) == 1
    assert sessions.load(db, "journalist", theirs, T0) is not None


def test_relinked_row_is_refused(db: Session) -> None:
    # A database writer points a session at another journalist: the box disagrees.
    victim, other = _journalist(db, "victim"), _journalist(db, "other")
    cookie = _login(db, other)
    db.execute(
        update(SessionRow).where(SessionRow.id == _row(db, cookie).id).values(journalist_id=victim)
    )
    assert sessions.load(db, "journalist", cookie, T0) is None
    assert _count(db) == 0


def test_the_row_alone_opens_nothing(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    row = _row(db, cookie)
    # Everything the database holds about the session.
    stored = row.box + row.id.encode() + row.app.encode()
    assert SEED not in stored
    # Without S: neither another secret nor anything derived from the row opens the box.
    with pytest.raises(Rejected):
        sessionbox.open_box(sessionbox.new_secret(), "journalist", row.box)
    with pytest.raises(Rejected):
        sessionbox.open_box(bytes.fromhex(row.id * 2), "journalist", row.box)


def test_the_cookie_alone_opens_nothing(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    secret = sessionbox.decode_cookie(cookie)
    assert SEED not in secret
    assert secret != SEED
    db.execute(delete(SessionRow))
    assert sessions.load(db, "journalist", cookie, T0) is None
    # A made-up cookie finds nothing either.
    other = sessionbox.encode_cookie(sessionbox.new_secret())
    assert sessions.load(db, "journalist", other, T0) is None


@pytest.mark.parametrize(
    "cookie",
    ["", "x", "a" * 43 + "=", "a" * 200, "../../etc/passwd", "é" * 43, "+" * 43],
)
def test_malformed_cookies_are_ignored(db: Session, cookie: str) -> None:
    _login(db, _journalist(db))
    assert sessions.load(db, "journalist", cookie, T0) is None
    assert sessions.update(db, "journalist", cookie, {}, T0) is None
    assert sessions.destroy(db, cookie) is False
    assert _count(db) == 1


def test_destroy_all_for_user(db: Session) -> None:
    ana, bek = _journalist(db, "ana"), _journalist(db, "bek")
    ana_here, ana_phone, ana_laptop = _login(db, ana), _login(db, ana), _login(db, ana)
    bek_cookie = _login(db, bek)
    source_cookie = sessions.create(db, "source", "ab" * 16, "source", None, {}, 60, 120, T0)
    assert sessions.destroy_all_for_user(db, "journalist", ana, except_cookie=ana_here) == 2
    assert sessions.load(db, "journalist", ana_here, T0) is not None
    assert sessions.load(db, "journalist", ana_phone, T0) is None
    assert sessions.load(db, "journalist", ana_laptop, T0) is None
    assert sessions.load(db, "journalist", bek_cookie, T0) is not None
    assert sessions.load(db, "source", source_cookie, T0) is not None
    assert sessions.destroy_all_for_user(db, "journalist", ana) == 1
    assert sessions.load(db, "journalist", ana_here, T0) is None
    with pytest.raises(ValueError, match="not linked"):
        sessions.destroy_all_for_user(db, "source", "ab" * 16)


def test_removing_a_journalist_removes_their_sessions(db: Session) -> None:
    user = _journalist(db)
    cookie = _login(db, user)
    db.commit()
    db.execute(delete(Journalist).where(Journalist.id == user))
    db.commit()
    assert _count(db) == 0
    assert sessions.load(db, "journalist", cookie, T0) is None


def test_purge_expired(db: Session) -> None:
    user = _journalist(db)
    old = _login(db, user, now=T0 - timedelta(hours=3))  # absolute expiry passed
    idle = _login(db, user, now=T0 - timedelta(minutes=45))  # idle expiry passed
    live = _login(db, user, now=T0 - timedelta(minutes=5))
    assert sessions.purge_expired(db, T0) == 2
    assert _count(db) == 1
    assert sessions.load(db, "journalist", live, T0) is not None
    assert sessions.load(db, "journalist", old, T0) is None
    assert sessions.load(db, "journalist", idle, T0) is None


def test_arguments_are_checked(db: Session) -> None:
    user = _journalist(db)
    with pytest.raises(ValueError, match="timezone-aware"):
        sessions.create(db, "journalist", user, "j", None, {}, 60, 120, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="unknown session app"):
        sessions.create(db, "admin", user, "j", None, {}, 60, 120, T0)
    with pytest.raises(ValueError, match="integer id"):
        sessions.create(db, "journalist", "ana", "j", None, {}, 60, 120, T0)
    with pytest.raises(ValueError, match="positive"):
        sessions.create(db, "journalist", user, "j", None, {}, 0, 120, T0)
    with pytest.raises(Rejected, match="key must be 32 bytes"):
        sessions.create(db, "journalist", user, "j", bytes(16), {}, 60, 120, T0)
    cookie = _login(db, user)
    with pytest.raises(ValueError, match="timezone-aware"):
        sessions.load(db, "journalist", cookie, datetime(2024, 1, 1))


def test_a_load_within_a_minute_writes_nothing(db: Session) -> None:
    cookie = _login(db, _journalist(db))
    first = sessions.load(db, "journalist", cookie, T0 + timedelta(seconds=1))
    assert first is not None
    db.commit()
    assert _row(db, cookie).idle_expires_at == T0 + timedelta(seconds=IDLE)
    sessions.load(db, "journalist", cookie, T0 + timedelta(seconds=59))
    assert not db.dirty
    assert _row(db, cookie).idle_expires_at == T0 + timedelta(seconds=IDLE)
    sessions.load(db, "journalist", cookie, T0 + timedelta(seconds=60))
    assert _row(db, cookie).idle_expires_at == T0 + timedelta(seconds=IDLE + 60)
