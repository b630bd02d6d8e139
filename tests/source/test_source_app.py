"""The source app end to end, through Flask's test client, on a real instance.

Every test initialises a real instance (``tipbox.instance.init_instance``) in the test's
database (SQLite, and PostgreSQL when configured) and drives the real app: no mock of our
code. The journalist side of a test (a reply) uses the domain functions directly.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tipbox import conversations, directory, sessions
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.codenames import generate_codename
from tipbox.crypto.envelope import Meta
from tipbox.instance import InitResult, init_instance
from tipbox.models import Base, Item, Journalist, SessionRow, Source
from tipbox.source import create_app
from tipbox.source.session import SESSION_COOKIE
from tipbox.source.state import EXTENSION, SourceState
from tipbox.storage import FilesystemBlobStore
from tipbox.web import TipboxFlask

KIB = 1024
REMOTE_ADDR = "203.0.113.77"
AGENT = "Mozilla/5.0 agent-5e1f"
CODENAME_RE = re.compile(r'<p class="codename" lang="en">([^<]+)</p>')
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ITEM_IDS_RE = re.compile(r'data-item-ids="([0-9a-f,]+)"')
REPLY_ID_RE = re.compile(r'action="/replies/([0-9a-f]{32})/hide"')


# --- the instance, the app and a browser ---------------------------------------------------


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    """A fresh instance in the test's database, with its identity exported to keys/."""
    result = init_instance(
        db, config, name="Fresh Times", admin_username="admin", recovery_in_place=True
    )
    db.commit()
    return result


AppFactory = Callable[..., TipboxFlask]


@pytest.fixture
def make_app(config: Config, instance: InitResult) -> Iterator[AppFactory]:
    """Build source apps on the instance, with config overrides (``max_files=2``, …)."""
    made: list[TipboxFlask] = []

    def factory(**overrides: Any) -> TipboxFlask:
        app = create_app(replace(config, **overrides))
        made.append(app)
        return app

    yield factory
    for app in made:
        state_of(app).engine.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> TipboxFlask:
    """The source app with the default limits."""
    return make_app()


def state_of(app: TipboxFlask) -> SourceState:
    state: SourceState = app.extensions[EXTENSION]
    return state


@dataclass
class Browser:
    """One browser: a test client that keeps the last CSRF token it was given."""

    app: TipboxFlask
    client: FlaskClient = field(init=False)
    token: str = ""
    responses: list[TestResponse] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()
        # Marked, so that a log line quoting either would show.
        self.client.environ_base.update({"REMOTE_ADDR": REMOTE_ADDR, "HTTP_USER_AGENT": AGENT})

    def _seen(self, response: TestResponse) -> TestResponse:
        self.responses.append(response)
        if response.mimetype == "text/html":
            found = TOKEN_RE.search(response.get_data(as_text=True))
            if found:
                self.token = found.group(1)
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self._seen(self.client.get(path, **kwargs))

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        if not self.token:
            self.get("/")
        fields = {"csrf_token": self.token, **(data or {})}
        return self._seen(self.client.post(path, data=fields, **kwargs))

    def generate(self) -> str:
        response = self.post("/generate")
        assert response.status_code == 200, response.status_code
        found = CODENAME_RE.search(response.get_data(as_text=True))
        assert found is not None
        return found.group(1)

    def confirm(self, codename: str) -> TestResponse:
        return self.post("/confirm", {"codename": codename})

    def new_source(self) -> str:
        codename = self.generate()
        assert self.confirm(codename).headers["Location"] == "/submit"
        return codename

    def login(self, codename: str) -> TestResponse:
        return self.post("/login", {"codename": codename})

    def submit(
        self, message: str = "", files: list[tuple[bytes, str]] | None = None
    ) -> TestResponse:
        self.get("/submit")
        data: dict[str, Any] = {"message": message}
        if files:
            data["files"] = [(io.BytesIO(content), name) for content, name in files]
        return self.post("/submit", data, content_type="multipart/form-data")

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie(SESSION_COOKIE)
        return None if cookie is None else cookie.value


def text_of(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def count(factory: sessionmaker[Session], model: type[Base]) -> int:
    with factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def only_source(factory: sessionmaker[Session]) -> Source:
    with factory() as db:
        return db.scalars(select(Source)).one()


def add_reply(
    factory: sessionmaker[Session], config: Config, instance: InitResult, text: str
) -> bytes:
    """A reply from the admin to the only source, made with the journalist's domain call."""
    with factory() as db:
        identity = directory.identity_public(db)
        admin = db.scalars(select(Journalist).where(Journalist.username == "admin")).one()
        unlocked = unlock_journalist(db, identity, admin, instance.admin.passphrase)
        source = db.scalars(select(Source)).one()
        reply_id = conversations.add_reply(
            db,
            FilesystemBlobStore(config.blob_dir),
            identity,
            admin,
            unlocked.keypair,
            source.public_id,
            text,
        )
        db.commit()
    return reply_id


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# --- the whole journey without JavaScript --------------------------------------------------


def test_the_whole_no_js_journey(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first = Browser(app)
    landing = first.get("/")
    assert "Fresh Times" in text_of(landing)

    codename = first.new_source()
    message = "The minister's deputy signed it on the 3rd " + secrets.token_hex(8)
    document = b"%PDF-1.7 contract " + secrets.token_bytes(20 * KIB)
    sent = first.submit(message, [(document, "contract-scan.pdf")])
    assert sent.status_code == 303
    assert sent.headers["Location"] == "/submit?sent=1"
    receipt = text_of(first.get("/submit?sent=1"))
    assert "Your submission was received" in receipt
    assert "1 message" in receipt
    assert "1 file" in receipt
    assert message not in receipt
    assert "contract-scan.pdf" not in receipt
    with session_factory() as db:
        items = db.scalars(select(Item).order_by(Item.seq)).all()
        assert [item.kind for item in items] == [1, 2]
        # Dated per day, named by random ids (invariant 5).
        assert all(type(item.created_on) is date for item in items)
        assert len({item.public_id for item in items}) == 2

    # Later, from another browser: log in with the codename, read a reply, hide it.
    second = Browser(app)
    logged_in = second.login(codename)
    assert logged_in.status_code == 303
    assert logged_in.headers["Location"] == "/replies"
    assert "There are no replies yet" in text_of(second.get("/replies"))
    reply_text = "Thank you. Can you tell us who else was at the meeting?"
    add_reply(session_factory, config, instance, reply_text)
    replies_page = text_of(second.get("/replies"))
    assert reply_text.replace("'", "&#39;") in replies_page
    assert "signature could not be verified" not in replies_page
    found = REPLY_ID_RE.search(replies_page)
    assert found is not None
    hidden = second.post(f"/replies/{found.group(1)}/hide")
    assert hidden.headers["Location"] == "/replies?hidden=1"
    after = text_of(second.get("/replies?hidden=1"))
    assert "The reply was hidden" in after
    assert reply_text not in after

    # Send more, then log out: the session row is gone and its pages are closed.
    assert second.submit("one more thing").status_code == 303
    rows_before = count(session_factory, SessionRow)
    out = second.post("/logout")
    assert out.headers["Location"] == "/logged-out"
    assert count(session_factory, SessionRow) == rows_before - 1
    assert second.session_cookie() is None
    assert "New Identity" in text_of(second.get("/logged-out"))
    assert second.get("/replies").headers["Location"] == "/login"

    _assert_codename_nowhere(codename, [first, second], config, session_factory, caplog)


def _assert_codename_nowhere(
    codename: str,
    browsers: list[Browser],
    config: Config,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Only the /generate response ever held the codename: no cookie, URL, row, file or log."""
    needles = [codename, codename.replace(" ", ""), codename.upper()]
    shown = 0
    for browser in browsers:
        for response in browser.responses:
            headers = str(response.headers)
            assert not any(needle in headers for needle in needles)
            if codename in text_of(response):
                shown += 1
    assert shown == 1, "the codename appeared in more than the one /generate response"
    for browser in browsers:
        assert browser.client._cookies is not None
        for cookie in browser.client._cookies.values():
            assert not any(needle in cookie.value for needle in needles)
    raw = _database_bytes(session_factory)
    files = b"".join(path.read_bytes() for path in files_under(config.data_dir))
    for needle in needles:
        assert needle.encode() not in raw
        assert needle.encode() not in files
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert not any(needle in logged for needle in needles)
    # Nor anything else about the visit: address, browser, cookies, paths.
    for marker in (REMOTE_ADDR, "agent-5e1f", SESSION_COOKIE, "/submit", "/replies"):
        assert marker not in logged
    for browser in browsers:
        assert browser.client._cookies is not None
        for cookie in browser.client._cookies.values():
            assert cookie.value not in logged


def _database_bytes(factory: sessionmaker[Session]) -> bytes:
    """Every value of every row of every table, as bytes (works on both backends)."""
    out = io.BytesIO()
    with factory() as db:
        for table in Base.metadata.sorted_tables:
            for row in db.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.write(bytes(value))
                    else:
                        out.write(str(value).encode())
    return out.getvalue()


# --- codenames: generate, confirm, start over, log in --------------------------------------


def test_generate_answers_no_store_and_puts_the_codename_in_no_url(app: TipboxFlask) -> None:
    browser = Browser(app)
    browser.get("/")
    response = browser.post("/generate")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers
    codename = CODENAME_RE.search(text_of(response))
    assert codename is not None
    assert codename.group(1) not in " ".join(
        re.findall(r'(?:href|action)="([^"]*)"', text_of(response))
    )


def test_a_wrong_confirmation_can_be_retried_or_started_over(
    app: TipboxFlask, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    codename = browser.generate()
    wrong = browser.confirm(generate_codename())
    assert wrong.status_code == 200
    assert "That is not the codename you were shown" in text_of(wrong)
    assert 'role="alert"' in text_of(wrong)
    # Not confirmed: the submit page asks for the codename instead.
    page = browser.get("/submit")
    assert "Confirm your codename" in text_of(page)
    assert 'id="submit-form"' not in text_of(page)
    assert browser.post("/submit", {"message": "x"}).headers["Location"] == "/submit"
    assert count(session_factory, Item) == 0
    # Start over: the unconfirmed source is discarded, a new one made.
    old = only_source(session_factory).public_id
    fresh = browser.generate()
    assert fresh != codename
    assert only_source(session_factory).public_id != old
    assert browser.confirm(fresh).headers["Location"] == "/submit"
    assert browser.confirm(fresh).headers["Location"] == "/submit"  # already confirmed


def test_every_wrong_codename_gets_the_same_answer(app: TipboxFlask) -> None:
    owner = Browser(app)
    codename = owner.new_source()
    words = codename.split()
    one_word_off = " ".join([*words[:-1], "zebra" if words[-1] != "zebra" else "yodel"])
    answers = []
    for typed in ["not a codename at all", generate_codename(), one_word_off, ""]:
        stranger = Browser(app)
        stranger.get("/login")
        response = stranger.login(typed)
        assert stranger.session_cookie() is None
        answers.append(
            (
                response.status_code,
                TOKEN_RE.sub("", text_of(response)),
                response.headers.get("Set-Cookie"),
            )
        )
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 200
    assert "That codename was not recognised" in answers[0][1]


def test_login_accepts_spacing_case_and_cyrillic_lookalikes(app: TipboxFlask) -> None:
    codename = Browser(app).new_source()
    typed = "  " + codename.upper().replace(" ", "   ").replace(
        "A", "\N{CYRILLIC CAPITAL LETTER A}"
    )
    browser = Browser(app)
    assert browser.login(typed).headers["Location"] == "/replies"


# --- CSRF before anything, and the Argon2id budget -----------------------------------------


def test_posts_without_a_csrf_token_are_refused_and_store_nothing(
    app: TipboxFlask, config: Config, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.get("/")
    for path in ("/generate", "/login", "/logout"):
        response = browser.client.post(path, data={"codename": generate_codename()})
        assert response.status_code == 400
        assert "Form expired" in text_of(response)
    assert count(session_factory, Source) == 0
    assert count(session_factory, SessionRow) == 0

    browser.new_source()
    blobs_before = files_under(config.blob_dir)
    response = browser.client.post(
        "/submit",
        data={"message": "hello", "files": [(io.BytesIO(secrets.token_bytes(300 * KIB)), "a.bin")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert count(session_factory, Item) == 0
    assert files_under(config.blob_dir) == blobs_before


def test_a_full_budget_answers_busy_at_once_and_never_before_the_csrf_check(
    app: TipboxFlask, session_factory: sessionmaker[Session]
) -> None:
    budget = state_of(app).budget
    browser = Browser(app)
    browser.get("/")
    for _ in range(budget.slots):
        assert budget.semaphore.acquire(blocking=False)
    try:
        # A full budget is answered first, without a look at the form: nothing is done
        # for a forged post either (Argon2id runs only in views, after the CSRF check).
        assert browser.client.post("/generate").status_code == 503
        busy = browser.post("/generate")
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "5"
        assert "Many people are using this site right now" in text_of(busy)
        assert browser.login(generate_codename()).status_code == 503
        # Even a post that would cost no Argon2id is refused unread: under a flood, a
        # refusal must cost less than reading the form would.
        assert browser.login("nonsense").status_code == 503
    finally:
        for _ in range(budget.slots):
            budget.semaphore.release()
    assert count(session_factory, Source) == 0
    # With a slot free, the CSRF check comes before any Argon2id.
    assert browser.client.post("/generate").status_code == 400
    assert count(session_factory, Source) == 0
    assert browser.post("/generate").status_code == 200


# --- submissions and their limits -----------------------------------------------------------


def test_the_submit_form_issues_ids_and_carries_the_script_data(
    app: TipboxFlask, instance: InitResult
) -> None:
    browser = Browser(app)
    browser.new_source()
    page = text_of(browser.get("/submit"))
    form = page[
        page.index('<form id="submit-form"') : page.index(
            "</form>", page.index('<form id="submit-form"')
        )
    ]
    ids = ITEM_IDS_RE.search(form)
    assert ids is not None
    issued = ids.group(1).split(",")
    assert len(issued) == state_of(app).limits.max_files + 1
    assert len(set(issued)) == len(issued)
    assert f'data-identity-ed25519="{(instance.identity.ed25519 or b"").hex()}"' in form
    assert re.search(r'data-newsroom-entry="[0-9a-f]{252}"', form)
    assert re.search(r'data-newsroom-signature="[0-9a-f]{128}"', form)
    assert re.search(r'data-source-id="[0-9a-f]{32}"', form)
    assert 'data-selftest="/static/vendor/selftest.json"' in form
    for element in (
        '<div id="js-status" role="status" aria-live="polite" hidden>',
        '<progress id="js-progress" max="100" value="0" hidden>',
        '<span id="js-progress-text" hidden>',
        '<div id="js-error" role="alert" hidden>',
        '<button type="button" id="js-fallback" hidden>',
    ):
        assert element in form
    assert set(issued) <= set(_session_data(app, browser)["issued"])


def _session_data(app: TipboxFlask, browser: Browser) -> dict[str, Any]:
    cookie = browser.session_cookie()
    assert cookie is not None
    with state_of(app).db() as db:
        opened = sessions.load(db, "source", cookie, datetime.now(UTC))
        db.commit()
    assert opened is not None
    return opened.data


def test_a_browser_made_submission_uses_up_its_ids(
    app: TipboxFlask, instance: InitResult, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.new_source()
    page = text_of(browser.get("/submit"))
    ids_found = ITEM_IDS_RE.search(page)
    source_found = re.search(r'data-source-id="([0-9a-f]{32})"', page)
    assert ids_found is not None
    assert source_found is not None
    item_ids = [bytes.fromhex(item_id) for item_id in ids_found.group(1).split(",")]
    source_id = bytes.fromhex(source_found.group(1))
    manifest, parts = _browser_envelope(
        source_id,
        item_ids,
        instance,
        [
            (1, "", envelope.TEXT_MEDIA_TYPE, "Сообщение из браузера".encode()),
            (2, "x.txt", "text/plain", b"abc"),
        ],
    )
    data: dict[str, Any] = {"mode": "browser", "manifest": json.dumps(manifest)}
    for name, blob in parts.items():
        data[name] = (io.BytesIO(blob), "blob", "application/octet-stream")
    response = browser.post("/submit", data, content_type="multipart/form-data")
    assert response.status_code == 303, text_of(response)
    assert count(session_factory, Item) == 2
    left = set(_session_data(app, browser)["issued"])
    assert item_ids[0].hex() not in left
    assert item_ids[1].hex() not in left
    assert item_ids[2].hex() in left
    # The same ids again: refused, in the source's language, nothing more stored.
    browser.get("/?l=ru")
    again = browser.post(
        "/submit",
        data | {name: (io.BytesIO(blob), "blob") for name, blob in parts.items()},
        content_type="multipart/form-data",
    )
    assert again.status_code == 400
    assert "Страница устарела" in text_of(again)
    assert count(session_factory, Item) == 2


def _browser_envelope(
    source_id: bytes,
    item_ids: list[bytes],
    instance: InitResult,
    items: list[tuple[int, str, str, bytes]],
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """What the page's script posts, made with the envelope primitives."""
    entries, blobs = [], {}
    for index, (kind, name, media_type, content) in enumerate(items):
        key = envelope.new_content_key()
        ad = envelope.additional_data(kind, source_id, item_ids[index])
        body = io.BytesIO()
        info = envelope.encrypt_body(key, ad, content, body)
        meta = envelope.seal_meta(key, ad, Meta(name, media_type, info.plain_length))
        blobs[f"blob{index}"] = body.getvalue()
        entries.append(
            {
                "item_id": item_ids[index].hex(),
                "kind": kind,
                "key_id": instance.newsroom.key_id.hex(),
                "sealed_meta": base64.b64encode(meta).decode(),
                "wrap": base64.b64encode(envelope.wrap_key(key, instance.newsroom.x25519)).decode(),
                "part": f"blob{index}",
            }
        )
    return {"version": 1, "source_id": source_id.hex(), "items": entries}, blobs


def test_a_browser_post_with_a_message_field_is_refused(
    app: TipboxFlask, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.new_source()
    browser.get("/submit")
    response = browser.post(
        "/submit",
        {"mode": "browser", "manifest": "{}", "message": "plaintext"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "could not be checked" in text_of(response)
    assert count(session_factory, Item) == 0


@pytest.mark.parametrize(
    ("language", "files", "message", "status", "expected"),
    [
        ("ru", [(b"x" * (8 * KIB), "big.bin")], "", 413, "Файл слишком большой"),
        ("kk", [(b"x" * (8 * KIB), "big.bin")], "", 413, "файлдың көлемі 4 КБ аспауы керек"),
        ("en", [(b"a", "1"), (b"b", "2"), (b"c", "3")], "", 400, "You chose too many files"),
        ("ru", [], "x" * 51, 400, "Сообщение слишком длинное"),
        ("kk", [], "   ", 400, "Жіберетін ештеңе жоқ"),
    ],
)
def test_limits_are_answered_in_the_source_language_and_store_nothing(
    make_app: AppFactory,
    config: Config,
    session_factory: sessionmaker[Session],
    language: str,
    files: list[tuple[bytes, str]],
    message: str,
    status: int,
    expected: str,
) -> None:
    app = make_app(max_file_bytes=4 * KIB, max_files=2, max_message_chars=50)
    browser = Browser(app)
    browser.get(f"/?l={language}")
    browser.new_source()
    response = browser.submit(message, files)
    assert response.status_code == status
    page = text_of(response)
    assert expected in page
    assert f'<html lang="{language}">' in page
    assert 'id="submit-form"' in page  # the form again, the session kept
    assert count(session_factory, Item) == 0
    assert not [path for path in files_under(config.blob_dir) if path.is_file()]
    assert browser.submit("now a short one").status_code == 303


def test_a_body_over_the_request_limit_gets_the_413_page_in_the_source_language(
    make_app: AppFactory, session_factory: sessionmaker[Session]
) -> None:
    app = make_app(max_file_bytes=4 * KIB, max_files=2, max_message_chars=50)
    browser = Browser(app)
    browser.get("/?l=ru")
    browser.new_source()
    browser.get("/submit")
    response = browser.post(
        "/submit",
        {"files": [(io.BytesIO(b"x" * (3 * 1024 * KIB)), "huge.bin")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    page = text_of(response)
    assert "Слишком большой объём" in page
    assert "Каждый файл: не более 4 КБ." in page
    assert "Ошибка 413" in page
    assert count(session_factory, Item) == 0
    # Any other form is small: a big body there is refused before it is read.
    assert browser.post("/login", {"codename": "x" * (100 * KIB)}).status_code == 413


# --- sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_expired_session_goes_to_the_login_page_with_a_note(
    app: TipboxFlask, session_factory: sessionmaker[Session], method: str
) -> None:
    browser = Browser(app)
    browser.new_source()
    assert browser.get("/submit").status_code == 200
    with session_factory() as db:
        past = datetime.now(UTC) - timedelta(seconds=1)
        db.execute(update(SessionRow).values(idle_expires_at=past))
        db.commit()
    if method == "GET":
        response = browser.get("/submit")
    else:
        response = browser.post("/submit", {"message": "x"}, content_type="multipart/form-data")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?ended=1"
    assert browser.session_cookie() is None
    assert count(session_factory, SessionRow) == 0
    assert "Your session has ended" in text_of(browser.get("/login?ended=1"))
    assert count(session_factory, Item) == 0
    # Without a session cookie at all there is nothing to say.
    assert browser.get("/submit").headers["Location"] == "/login"


def test_a_deleted_source_ends_its_session(
    app: TipboxFlask, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.new_source()
    with session_factory() as db:
        db.delete(db.scalars(select(Source)).one())
        db.commit()
    assert browser.get("/replies").headers["Location"] == "/login?ended=1"
    assert count(session_factory, SessionRow) == 0


def test_a_damaged_reply_is_flagged_and_not_shown(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
) -> None:
    browser = Browser(app)
    browser.new_source()
    reply_id = add_reply(session_factory, config, instance, "Meet us at the usual place")
    with session_factory() as db:
        db.execute(update(Item).where(Item.public_id == reply_id).values(signature=bytes(64)))
        db.commit()
    page = text_of(browser.get("/replies"))
    assert "Meet us" not in page
    assert "This reply is not shown" in page
    assert browser.post(f"/replies/{secrets.token_hex(16)}/hide").status_code == 404
    assert browser.post("/replies/not-an-id/hide").status_code == 404


# --- every page: headers, accessibility, language -----------------------------------------


def every_page(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    language: str,
) -> dict[str, TestResponse]:
    """Every page and every kind of answer a source can get, in ``language``."""
    pages: dict[str, TestResponse] = {}
    visitor = Browser(app)
    pages["landing"] = visitor.get(f"/?l={language}")
    pages["key"] = visitor.get("/key")
    pages["login"] = visitor.get("/login")
    pages["login, session ended"] = visitor.get("/login?ended=1")
    pages["login failed"] = visitor.login("not a codename")
    pages["not found"] = visitor.get("/nowhere")
    pages["form expired"] = visitor._seen(visitor.client.post("/generate"))
    pages["too large"] = visitor.post("/login", {"codename": "x" * (100 * KIB)})

    source = Browser(app)
    source.get(f"/?l={language}")
    pages["codename"] = source.post("/generate")
    found = CODENAME_RE.search(text_of(pages["codename"]))
    assert found is not None
    pages["confirm failed"] = source.confirm(generate_codename())
    pages["not confirmed yet"] = source.get("/submit")
    pages["confirmed"] = source.confirm(found.group(1))
    pages["submit"] = source.get("/submit")
    pages["submit refused"] = source.submit("   ")
    pages["submitted"] = source.submit("Документы во вложении")
    pages["receipt"] = source.get("/submit?sent=1")
    pages["no replies"] = source.get("/replies")
    add_reply(session_factory, config, instance, "Спасибо, мы получили документы.")
    pages["replies"] = source.get("/replies")
    reply = REPLY_ID_RE.search(text_of(pages["replies"]))
    assert reply is not None
    pages["hidden"] = source.post(f"/replies/{reply.group(1)}/hide")
    pages["after hiding"] = source.get("/replies?hidden=1")
    budget = state_of(app).budget
    for _ in range(budget.slots):
        budget.semaphore.acquire(blocking=False)
    try:
        pages["busy"] = source.post("/generate")
    finally:
        for _ in range(budget.slots):
            budget.semaphore.release()
    pages["logout"] = source.post("/logout")
    pages["logged out"] = source.get("/logged-out")
    pages["healthz"] = source.get("/healthz")
    pages["stylesheet"] = source.get("/static/css/source.css")
    return pages


def _load_web_header_tests() -> Any:
    # tests/web is a package of its own; load its locked expectations by path.
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "web" / "test_headers.py"
    spec = importlib.util.spec_from_file_location("tipbox_tests_web_headers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_answer_carries_the_exact_security_headers(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
) -> None:
    web_headers = _load_web_header_tests()
    assert web_headers.EXPECTED_CSP["source"].count("script-src 'self' 'wasm-unsafe-eval';") == 1
    pages = every_page(app, config, instance, session_factory, "en")
    statuses = {name: response.status_code for name, response in pages.items()}
    assert statuses["form expired"] == 400
    assert statuses["too large"] == 413
    assert statuses["busy"] == 503
    assert statuses["not found"] == 404
    assert statuses["submit refused"] == 400
    for name, response in pages.items():
        try:
            web_headers.assert_security_headers(response.headers, "source")
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


class PageParser(HTMLParser):
    """What the accessibility and language checks need to know about a page."""

    VOID = frozenset({"input", "meta", "link", "br", "hr", "img"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.html_lang: str | None = None
        self.headings: list[int] = []
        self.labels: set[str] = set()
        self.controls: list[dict[str, str]] = []
        self.buttons: list[str] = []
        self.ids: list[str] = []
        self.inline: list[str] = []
        self.text: list[str] = []
        self.has_viewport = False
        # Open elements, each with whether its text is exempt from the language check
        # (scripts, code, and anything marked lang="en": the codename, "English").
        self._open: list[tuple[str, bool]] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.html_lang = values.get("lang")
        if tag == "meta" and values.get("name") == "viewport":
            self.has_viewport = "width=device-width" in values.get("content", "")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "label" and "for" in values:
            self.labels.add(values["for"])
        if tag in ("input", "textarea", "select") and values.get("type") != "hidden":
            self.controls.append({"tag": tag, **values})
        if "id" in values:
            self.ids.append(values["id"])
        if "style" in values or any(name.startswith("on") for name in values):
            self.inline.append(tag)
        if tag == "script" and "src" not in values:
            self.inline.append("script")
        if tag == "button":
            self._button = []
        if tag not in self.VOID:
            exempt = tag in ("script", "style", "code") or values.get("lang", "") == "en"
            inherited = bool(self._open) and self._open[-1][1]
            self._open.append((tag, exempt or inherited))

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.buttons.append("".join(self._button).strip())
            self._button = None
        if tag in self.VOID:
            return
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data)
        if not (self._open and self._open[-1][1]):
            self.text.append(data)


def parse_page(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    return parser


def html_pages(pages: dict[str, TestResponse]) -> dict[str, str]:
    return {
        name: text_of(response)
        for name, response in pages.items()
        if response.mimetype == "text/html" and response.status_code != 303
    }


def test_every_page_is_accessible(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
) -> None:
    pages = html_pages(every_page(app, config, instance, session_factory, "en"))
    assert len(pages) >= 19
    for name, page in pages.items():
        parsed = parse_page(page)
        where = f"page {name!r}"
        assert parsed.html_lang == "en", where
        assert parsed.has_viewport, where
        assert parsed.headings.count(1) == 1, where
        assert parsed.headings[0] == 1, where
        steps = zip(parsed.headings, parsed.headings[1:], strict=False)
        assert all(after <= before + 1 for before, after in steps), (where, parsed.headings)
        for control in parsed.controls:
            assert control.get("id") in parsed.labels, (where, control)
        assert all(parsed.buttons), (where, "a button without text")
        assert len(parsed.ids) == len(set(parsed.ids)), (where, "duplicate ids")
        assert parsed.inline == [], (where, "inline style, script or handler")
        assert 'class="skip-link" href="#content"' in page, where


# Words that stay as they are in every language.
UNTRANSLATED = re.compile(
    r"Tor Browser|JavaScript|WebAssembly|New Identity|Safest|Settings|Fresh Times"
)


@pytest.mark.parametrize(
    ("language", "phrases"),
    [
        ("ru", {"landing": "Получить кодовое имя", "submit": "Отправить сообщение или файлы"}),
        ("kk", {"landing": "Кодтық атау алу", "submit": "Хабарлама немесе файл жіберу"}),
    ],
)
def test_every_page_is_in_the_chosen_language(
    app: TipboxFlask,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    language: str,
    phrases: dict[str, str],
) -> None:
    pages = html_pages(every_page(app, config, instance, session_factory, language))
    english = english_msgids()
    for name, page in pages.items():
        parsed = parse_page(page)
        assert parsed.html_lang == language, name
        for msgid in english:
            assert msgid not in page, (name, msgid)
        text = UNTRANSLATED.sub(" ", " ".join(parsed.text))
        leftovers = re.findall(r"[A-Za-z]{3,}", text)
        assert leftovers == [], (name, leftovers)
    for name, phrase in phrases.items():
        assert phrase in pages[name]


def english_msgids() -> list[str]:
    """Every English sentence of the catalogue that no translation keeps as it is."""
    from babel.messages.pofile import read_po

    template = Path(__file__).resolve().parents[2] / "tipbox/source/translations/messages.pot"
    with template.open("rb") as handle:
        catalogue = read_po(handle)
    found = []
    for message in catalogue:
        msgid = message.id if isinstance(message.id, str) else str(message.id[0])
        if not msgid or not re.search(r"[a-z]{3,}", msgid):
            continue
        # The part before the first placeholder is what a page would show verbatim.
        head = re.split(r"%\(|\{", msgid)[0].strip()
        if len(head) >= 6 and not UNTRANSLATED.fullmatch(head):
            found.append(head)
    return found


def test_the_language_choice_is_remembered_and_switchable(app: TipboxFlask) -> None:
    browser = Browser(app)
    assert '<html lang="en">' in text_of(browser.get("/"))
    assert '<html lang="en">' in text_of(browser.get("/", headers={"Accept-Language": "en-US"}))
    first_guess = Browser(app).get("/", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru">' in text_of(first_guess)
    page = text_of(browser.get("/key?l=kk"))
    assert '<html lang="kk">' in page
    for code, name in (("en", "English"), ("ru", "Русский"), ("kk", "Қазақша")):
        assert f'<a href="/key?l={code}" lang="{code}" hreflang="{code}"' in page
        assert f">{name}</a>" in page
    assert 'aria-current="page">Қазақша</a>' in page
    # Remembered in the Flask cookie, on every page after, form posts included.
    assert '<html lang="kk">' in text_of(browser.get("/login"))
    assert '<html lang="kk">' in text_of(browser.login("wrong"))
    assert '<html lang="kk">' in text_of(browser.get("/nowhere"))
    assert '<html lang="ru">' in text_of(browser.get("/login?l=ru"))
    assert '<html lang="ru">' in text_of(browser.get("/"))
    # An unknown language changes nothing.
    assert '<html lang="ru">' in text_of(browser.get("/?l=xx"))
    # The page that shows the codename offers no link away from it.
    codename_page = text_of(browser.post("/generate"))
    assert "hreflang" not in codename_page


@pytest.mark.parametrize("integrity", ["sha384-" + "A" * 64, None])
def test_the_submit_page_loads_the_script_only_with_its_hash(
    app: TipboxFlask, integrity: str | None
) -> None:
    app.extensions[EXTENSION] = replace(state_of(app), script_integrity=integrity)
    browser = Browser(app)
    browser.new_source()
    page = text_of(browser.get("/submit"))
    scripts = re.findall(r"<script[^>]*>", page)
    if integrity is None:
        assert scripts == []
    else:
        assert scripts == [
            f'<script type="module" src="/static/vendor/source.js" integrity="{integrity}">'
        ]
    # No other page loads it.
    assert "<script" not in text_of(browser.get("/replies"))
    assert 'id="submit-form"' in page


# --- in a real browser: a 320-pixel screen and the keyboard --------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def live_url(app: TipboxFlask) -> Iterator[str]:
    """The app served over HTTP on a free local port (cookies without Secure)."""
    from werkzeug.serving import make_server

    app.extensions[EXTENSION] = replace(
        state_of(app), config=replace(state_of(app).config, extra={"TIPBOX_COOKIE_SECURE": "0"})
    )
    app.config["SESSION_COOKIE_SECURE"] = False
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.mark.browser
@pytest.mark.parametrize("language", ["en", "ru", "kk"])
def test_pages_fit_a_320_pixel_screen_and_work_from_the_keyboard(
    live_url: str, language: str
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 320, "height": 640})
            widths = {}
            page.goto(f"{live_url}/?l={language}")
            # The first Tab reaches the skip link, and it shows.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip-link"
            box = page.locator(".skip-link").bounding_box()
            assert box is not None
            assert box["y"] >= 0
            widths["landing"] = page.evaluate("document.documentElement.scrollWidth")
            for path in ("/key", "/login", "/logged-out"):
                page.goto(live_url + path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            page.goto(live_url + "/")
            # Get a codename and confirm it with the keyboard only.
            page.focus('form[action$="/generate"] button')
            page.keyboard.press("Enter")
            page.wait_for_selector("p.codename")
            widths["codename"] = page.evaluate("document.documentElement.scrollWidth")
            codename = " ".join(page.inner_text("p.codename").split())
            page.focus("#codename")
            page.keyboard.type(codename)
            page.keyboard.press("Enter")
            page.wait_for_selector("#submit-form")
            widths["submit"] = page.evaluate("document.documentElement.scrollWidth")
            page.goto(live_url + "/replies")
            widths["replies"] = page.evaluate("document.documentElement.scrollWidth")
        finally:
            browser.close()
    assert all(width <= 320 for width in widths.values()), widths
