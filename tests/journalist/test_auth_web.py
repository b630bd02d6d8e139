"""The journalist app's login, logout and account pages, through Flask's test client.

Every test initialises a real instance in the test's database (SQLite, and PostgreSQL
when configured) and drives the real app; TOTP codes are made with pyotp at the real
clock. A failed login answers **200** with the login form and one generic message (the
same page for every failure), and sets no session cookie.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from web.test_headers import assert_security_headers  # type: ignore[import-not-found]
from werkzeug.test import TestResponse

import journalist_ui
from journalist_ui.session import SESSION_COOKIE
from journalist_ui.state import EXTENSION, JournalistState
from tipbox import directory, keyring, sessions
from tipbox.accounts import NewJournalist, create_journalist, unlock_journalist
from tipbox.config import Config
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.instance import InitResult, init_instance
from tipbox.models import Journalist, SessionRow
from tipbox.web import TipboxFlask

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET_RE = re.compile(r'<code class="totp-secret">([A-Z2-7]+)</code>')
PASSPHRASE_RE = re.compile(r'<p class="passphrase" lang="en">([^<]+)</p>')
FAILED = "Login failed. Check your username, passphrase and code"


# --- the instance, the app and a browser ---------------------------------------------------


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    """A fresh instance in the test's database; its first admin is ``admin``."""
    result = init_instance(db, config, name="Web Times", admin_username="admin")
    db.commit()
    return result


@pytest.fixture
def app(config: Config, instance: InitResult) -> Iterator[TipboxFlask]:
    """The journalist app on the instance."""
    made = journalist_ui.create_app(config)
    yield made
    state_of(made).engine.dispose()


def state_of(app: TipboxFlask) -> JournalistState:
    found: JournalistState = app.extensions[EXTENSION]
    return found


def row(db: Session, username: str = "admin") -> Journalist:
    query = select(Journalist).where(Journalist.username == username)
    return db.scalars(query.execution_options(populate_existing=True)).one()


def fresh_code(db: Session, username: str, secret: str) -> str:
    """A code of ``secret`` for a step the account has not spent yet (within the window)."""
    db.rollback()
    last = row(db, username).totp_last_step
    totp = pyotp.TOTP(secret)
    # The oldest unspent step still accepted, with a margin: a step about to leave the
    # window is skipped, since the code may be checked seconds later (a process start,
    # Argon2id on a loaded machine); when no step is left, wait for the next one.
    while True:
        current = totp.timecode(datetime.now(UTC))
        oldest = current - 1 if time.time() % 30 < 15 else current
        step = oldest if last is None else max(oldest, last + 1)
        if step <= current + 1:
            break
        time.sleep(1)
    return str(totp.generate_otp(step))


def session_rows(db: Session) -> list[SessionRow]:
    db.rollback()
    return list(db.scalars(select(SessionRow).execution_options(populate_existing=True)))


@dataclass
class Browser:
    """One browser: a test client that keeps the last CSRF token it was given."""

    app: TipboxFlask
    # The test's own database session: its transaction is ended before each request, so
    # that SQLite's write lock is free for the app.
    db: Session
    client: FlaskClient = field(init=False)
    token: str = ""

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def _seen(self, response: TestResponse) -> TestResponse:
        assert_security_headers(response.headers, "journalist")
        if response.mimetype == "text/html":
            found = TOKEN_RE.search(response.get_data(as_text=True))
            if found:
                self.token = found.group(1)
        return response

    def get(self, path: str) -> TestResponse:
        self.db.rollback()
        return self._seen(self.client.get(path))

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> TestResponse:
        if not self.token:
            self.get("/login")
        fields = {"csrf_token": self.token} if csrf else {}
        self.db.rollback()
        return self._seen(self.client.post(path, data={**fields, **(data or {})}))

    def login(self, username: str, passphrase: str, code: str) -> TestResponse:
        return self.post("/login", {"username": username, "passphrase": passphrase, "code": code})

    def cookie(self) -> str | None:
        found = self.client.get_cookie(SESSION_COOKIE)
        return None if found is None else found.value


def logged_in(app: TipboxFlask, db: Session, instance: InitResult) -> Browser:
    """A browser in which the instance's admin has logged in."""
    browser = Browser(app, db)
    admin = instance.admin
    response = browser.login("admin", admin.passphrase, fresh_code(db, "admin", admin.totp_secret))
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"
    return browser


def make_bob(db: Session, config: Config, instance: InitResult) -> NewJournalist:
    """A second journalist (no grants needed here)."""
    identity_public = directory.identity_public(db)
    admin_keys = unlock_journalist(db, identity_public, row(db), instance.admin.passphrase)
    identity_seed = keyring.granted_seed(
        db, identity_public, admin_keys.keypair, Role.IDENTITY, identity_public.key_id
    )
    bob = create_journalist(
        db,
        keypair_from_seed(Role.IDENTITY, identity_seed),
        "bob",
        is_admin=False,
        cost=config.journalist_kdf,
        must_change_passphrase=True,
    )
    db.commit()
    return bob


def assert_failed(response: TestResponse, browser: Browser) -> None:
    assert response.status_code == 200
    assert FAILED in response.get_data(as_text=True)
    assert browser.cookie() is None
    assert SESSION_COOKIE not in response.headers.get("Set-Cookie", "")


# --- login and logout ----------------------------------------------------------------------


def test_login_sets_the_session_cookie_and_opens_the_start_page(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    browser = Browser(app, db)
    assert browser.get("/").headers["Location"] == "/login"
    admin = instance.admin
    response = browser.login("admin", admin.passphrase, fresh_code(db, "admin", admin.totp_secret))
    assert response.status_code == 303
    set_cookie = response.headers.getlist("Set-Cookie")
    ours = [c for c in set_cookie if c.startswith(f"{SESSION_COOKIE}=")]
    assert len(ours) == 1
    for flag in ("HttpOnly", "SameSite=Strict", "Secure"):
        assert flag in ours[0]
    page = browser.get("/")
    assert page.status_code == 200
    assert "<h1>Inbox</h1>" in page.get_data(as_text=True)
    assert browser.get("/account").status_code == 200
    assert len(session_rows(db)) == 1
    assert browser.get("/login").headers["Location"] == "/"


def test_every_failure_gets_the_same_page_and_no_session(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    admin = instance.admin
    code = fresh_code(db, "admin", admin.totp_secret)
    wrong_code = "000000" if code != "000000" else "111111"
    bodies = []
    for username, passphrase, typed in (
        ("admin", admin.passphrase + " extra", code),  # wrong passphrase
        ("admin", admin.passphrase, wrong_code),  # wrong TOTP
        ("nobody", admin.passphrase, code),  # unknown username
    ):
        browser = Browser(app, db)
        response = browser.login(username, passphrase, typed)
        assert_failed(response, browser)
        bodies.append(TOKEN_RE.sub("", response.get_data(as_text=True)))
    assert len(set(bodies)) == 1
    assert session_rows(db) == []
    # The failures were committed (the throttle counts them).
    assert row(db).failed_login_count == 2


def test_a_replayed_code_is_refused(app: TipboxFlask, db: Session, instance: InitResult) -> None:
    admin = instance.admin
    code = fresh_code(db, "admin", admin.totp_secret)
    first = Browser(app, db)
    assert first.login("admin", admin.passphrase, code).status_code == 303
    second = Browser(app, db)
    assert_failed(second.login("admin", admin.passphrase, code), second)
    assert len(session_rows(db)) == 1


def test_busy_gate_answers_503_with_retry_after(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    browser = Browser(app, db)
    admin = instance.admin
    code = fresh_code(db, "admin", admin.totp_secret)
    with state_of(app).gate.slot():
        response = browser.login("admin", admin.passphrase, code)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert session_rows(db) == []


def test_logout_ends_the_session(app: TipboxFlask, db: Session, instance: InitResult) -> None:
    browser = logged_in(app, db, instance)
    browser.get("/")
    response = browser.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert browser.cookie() is None
    assert session_rows(db) == []
    assert browser.get("/").headers["Location"] == "/login"


def test_an_expired_session_goes_to_login(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    browser = logged_in(app, db, instance)
    db.execute(update(SessionRow).values(idle_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.commit()
    response = browser.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?ended=1"
    assert browser.cookie() is None
    assert session_rows(db) == []
    assert "Your session has ended" in browser.get("/login?ended=1").get_data(as_text=True)


def test_a_tampered_session_row_logs_out(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    browser = logged_in(app, db, instance)
    (found,) = session_rows(db)
    box = bytearray(found.box)
    box[len(box) // 2] ^= 0x01
    found.box = bytes(box)
    db.commit()
    response = browser.get("/account")
    assert response.headers["Location"] == "/login?ended=1"
    assert session_rows(db) == []


@pytest.mark.parametrize(
    "path",
    [
        "/logout",
        "/account/passphrase",
        "/account/totp/begin",
        "/account/totp/commit",
        "/account/logout-others",
    ],
)
def test_posts_without_a_csrf_token_are_refused(
    app: TipboxFlask, db: Session, instance: InitResult, path: str
) -> None:
    browser = logged_in(app, db, instance)
    browser.get("/account")
    response = browser.post(path, {"passphrase": instance.admin.passphrase}, csrf=False)
    assert response.status_code == 400
    assert len(session_rows(db)) == 1


def test_login_without_a_csrf_token_is_refused(
    app: TipboxFlask, db: Session, instance: InitResult
) -> None:
    browser = Browser(app, db)
    browser.get("/login")
    admin = instance.admin
    data = {
        "username": "admin",
        "passphrase": admin.passphrase,
        "code": fresh_code(db, "admin", admin.totp_secret),
    }
    assert browser.post("/login", data, csrf=False).status_code == 400
    assert session_rows(db) == []


# --- the account page ----------------------------------------------------------------------


def test_change_passphrase(app: TipboxFlask, db: Session, instance: InitResult) -> None:
    admin = instance.admin
    browser = logged_in(app, db, instance)
    browser.get("/account")
    wrong = browser.post("/account/passphrase", {"passphrase": admin.passphrase + " x"})
    assert "The passphrase was not right" in wrong.get_data(as_text=True)
    response = browser.post("/account/passphrase", {"passphrase": admin.passphrase})
    assert response.status_code == 200
    found = PASSPHRASE_RE.search(response.get_data(as_text=True))
    assert found is not None
    new = found.group(1)
    assert new != admin.passphrase
    # This session stays; the new passphrase logs in, the old one does not.
    assert browser.get("/").status_code == 200
    old_try = Browser(app, db)
    assert_failed(
        old_try.login("admin", admin.passphrase, fresh_code(db, "admin", admin.totp_secret)),
        old_try,
    )
    again = Browser(app, db)
    code = fresh_code(db, "admin", admin.totp_secret)
    assert again.login("admin", new, code).status_code == 303


def test_totp_re_enrolment(app: TipboxFlask, db: Session, instance: InitResult) -> None:
    admin = instance.admin
    browser = logged_in(app, db, instance)
    browser.get("/account")
    begun = browser.post("/account/totp/begin")
    page = begun.get_data(as_text=True)
    found = SECRET_RE.search(page)
    assert found is not None
    secret = found.group(1)
    # The secret is shown, with an inline SVG QR code; no form carries it.
    assert "<svg" in page
    for absent in ("data:", "<script", "style="):
        assert absent not in page
    assert f'value="{secret}"' not in page
    # Shown again on the account page while pending (from the session box).
    assert secret in browser.get("/account").get_data(as_text=True)
    code = str(pyotp.TOTP(secret).now())
    done = browser.post("/account/totp/commit", {"passphrase": admin.passphrase, "code": code})
    assert "Your new two-factor code is set up" in done.get_data(as_text=True)
    assert secret not in done.get_data(as_text=True)
    # The old secret no longer logs in; the new one does.
    old = Browser(app, db)
    assert_failed(
        old.login("admin", admin.passphrase, fresh_code(db, "admin", admin.totp_secret)), old
    )
    new = Browser(app, db)
    assert new.login("admin", admin.passphrase, fresh_code(db, "admin", secret)).status_code == 303


def test_a_forged_account_field_acts_on_the_sessions_account_only(
    app: TipboxFlask, db: Session, config: Config, instance: InitResult
) -> None:
    admin = instance.admin
    bob = make_bob(db, config, instance)
    bob_id = bob.row.id
    before = (row(db, "bob").verifier, row(db, "bob").totp_box, row(db, "bob").kdf_salt)
    browser = logged_in(app, db, instance)
    browser.get("/account")
    forged = {"journalist_id": str(bob_id), "user": str(bob_id), "username": "bob"}
    secret = SECRET_RE.search(browser.post("/account/totp/begin", forged).get_data(as_text=True))
    assert secret is not None
    code = str(pyotp.TOTP(secret.group(1)).now())
    done = browser.post(
        "/account/totp/commit", {"passphrase": admin.passphrase, "code": code, **forged}
    )
    assert "Your new two-factor code is set up" in done.get_data(as_text=True)
    changed = browser.post("/account/passphrase", {"passphrase": admin.passphrase, **forged})
    assert PASSPHRASE_RE.search(changed.get_data(as_text=True)) is not None
    bob_row = row(db, "bob")
    assert (bob_row.verifier, bob_row.totp_box, bob_row.kdf_salt) == before
    assert bob_row.failed_login_count == 0
    assert bob_row.must_change_passphrase
    assert row(db).totp_last_step is not None


def test_must_change_passphrase_goes_to_the_account_page_first(
    app: TipboxFlask, db: Session, config: Config, instance: InitResult
) -> None:
    bob = make_bob(db, config, instance).credentials
    browser = Browser(app, db)
    response = browser.login("bob", bob.passphrase, fresh_code(db, "bob", bob.totp_secret))
    assert response.headers["Location"] == "/account"
    assert browser.get("/").headers["Location"] == "/account"
    assert browser.post("/account/totp/begin").headers["Location"] == "/account"
    changed = browser.post("/account/passphrase", {"passphrase": bob.passphrase})
    assert PASSPHRASE_RE.search(changed.get_data(as_text=True)) is not None
    assert browser.get("/").status_code == 200


def test_logout_others_removes_only_the_other_sessions(
    app: TipboxFlask, db: Session, config: Config, instance: InitResult
) -> None:
    bob_id = make_bob(db, config, instance).row.id
    browser = logged_in(app, db, instance)
    admin_id = row(db).id
    now = datetime.now(UTC)
    for user, role in ((admin_id, "admin"), (admin_id, "admin"), (bob_id, "journalist")):
        sessions.create(db, sessions.JOURNALIST, user, role, bytes(32), {}, 600, 3600, now)
    db.commit()
    assert len(session_rows(db)) == 4
    browser.get("/account")
    response = browser.post("/account/logout-others")
    assert "Other sessions ended: 2." in response.get_data(as_text=True)
    left = session_rows(db)
    assert sorted(r.journalist_id or 0 for r in left) == sorted([admin_id, bob_id])
    assert browser.get("/account").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/login"),
        ("GET", "/account"),
        ("GET", "/healthz"),
        ("POST", "/account/totp/begin"),
        ("POST", "/account/logout-others"),
        ("GET", "/missing"),
    ],
)
def test_every_journalist_page_carries_the_exact_headers(
    app: TipboxFlask, db: Session, instance: InitResult, method: str, path: str
) -> None:
    browser = logged_in(app, db, instance)
    browser.get("/account")
    # Browser checks the headers on every response it sees.
    response = browser.get(path) if method == "GET" else browser.post(path)
    assert response.status_code in (200, 303, 404)
