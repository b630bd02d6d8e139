"""The journalist app's login and forms, fuzzed through Flask's test client.

The login form is fuzzed without a session (with the login page's CSRF token); the other
forms as the instance's admin, logged in with passphrase and a fresh TOTP code. Fields
carry invalid UTF-8, look-alike digits, NULs and direction controls; bodies come
urlencoded or as multipart with duplicated and nameless parts. Never a 500, never a
traceback in the page.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyotp
import pytest
from flask.testing import FlaskClient
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

import journalist_ui
from journalist_ui.state import EXTENSION, JournalistState
from tipbox import sources
from tipbox.config import Config
from tipbox.instance import InitResult
from tipbox.models import Journalist
from tipbox.web import TipboxFlask

from .conftest import TOKEN_RE, assert_clean_answer, environ_with
from .profiles import fuzz, hostile_bytes, hostile_text

FIELDS = {
    "/login": ["username", "passphrase", "code"],
    "/admin/settings": [
        "name",
        "description",
        "languages",
        "max_message_chars",
        "max_files",
        "max_file_mib",
        "retention_days",
        "retention_off",
        "files_accepted",
    ],
    "/account/passphrase": ["passphrase"],
    "/account/totp/commit": ["passphrase", "code"],
    "/bulk": ["source", "action", "confirm", "back"],
    "/admin/journalists": ["username", "is_admin"],
}
SOURCE_FORMS = {
    "status": ["status"],
    "star": ["starred"],
    "assignee": ["assignee"],
    "tags": ["tag"],
    "tags/remove": ["tag"],
    "note": ["text"],
    "reply": ["text"],
}


@dataclass
class JournalistRig:
    """The journalist app, a client logged in as the admin, and a source to act on."""

    app: TipboxFlask
    source_hex: str
    client: FlaskClient = field(init=False)
    token: str = ""

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def refresh_token(self, path: str) -> None:
        found = TOKEN_RE.search(self.client.get(path).get_data(as_text=True))
        if found:
            self.token = found.group(1)


def _fresh_code(db: Session, secret: str) -> str:
    """A TOTP code for a step the admin has not spent (as tests/journalist does)."""
    db.rollback()
    last = db.scalars(select(Journalist.totp_last_step)).one()
    db.rollback()  # every transaction takes SQLite's write lock: free it for the app
    totp = pyotp.TOTP(secret)
    while True:
        current = totp.timecode(datetime.now(UTC))
        oldest = current - 1 if time.time() % 30 < 15 else current
        step = oldest if last is None else max(oldest, last + 1)
        if step <= current + 1:
            return str(totp.generate_otp(step))
        time.sleep(1)


@pytest.fixture
def journalist_rig(db: Session, config: Config, instance: InitResult) -> Iterator[JournalistRig]:
    """The admin logged in to the journalist app; one source exists."""
    source = sources.create_source(db)
    db.commit()
    app = journalist_ui.create_app(config)
    rig = JournalistRig(app, source.public_id.hex())
    rig.refresh_token("/login")
    admin = instance.admin
    response = rig.client.post(
        "/login",
        data={
            "csrf_token": rig.token,
            "username": "admin",
            "passphrase": admin.passphrase,
            "code": _fresh_code(db, admin.totp_secret),
        },
    )
    assert response.status_code == 303, response.status_code
    db.rollback()
    rig.refresh_token("/")
    yield rig
    state: JournalistState = app.extensions[EXTENSION]
    state.engine.dispose()


def field_values() -> st.SearchStrategy[bytes]:
    """A field's raw value: invalid UTF-8, look-alike digits, controls, huge numbers."""
    return st.one_of(
        hostile_bytes(120),
        hostile_text(40).map(lambda t: t.encode("utf-8")),
        st.sampled_from(
            [
                "²",
                "\u0661\u0662",
                "٣",
                "1" * 40,
                "-1",
                "0",
                "1e9",
                "\u202eadmin",
                "admin\x00",
                "spam",
            ]
        ).map(lambda t: t.encode("utf-8")),
    )


@st.composite
def bodies(draw: st.DrawFn, names: list[str], token: str) -> tuple[bytes, str]:
    """A form body over ``names`` (and stray names): urlencoded or multipart."""
    pairs: list[tuple[bytes | None, bytes]] = []
    if draw(st.integers(0, 5)):
        pairs.append((b"csrf_token", token.encode()))
    # Mostly the form's own names, so that the view runs; stray names keep the framing
    # intact (no quote, CR or LF), which test_source_forms breaks on purpose.
    framed = hostile_bytes(10).map(lambda b: b.translate(None, b'"\r\n'))
    known = st.sampled_from(names).map(str.encode)
    all_names = st.one_of(known, known, known, st.none(), framed)
    for _ in range(draw(st.integers(0, 6))):
        pairs.append((draw(all_names), draw(field_values())))
    if draw(st.booleans()):
        body = b"&".join((name or b"") + b"=" + value for name, value in pairs)
        return body, "application/x-www-form-urlencoded"
    boundary = b"tipboxfuzz" + draw(st.binary(min_size=4, max_size=4)).hex().encode()
    out = b""
    for name, value in pairs:
        disposition = b"form-data" if name is None else b'form-data; name="' + name + b'"'
        if name != b"csrf_token" and draw(st.integers(0, 5)) == 0:
            disposition += b'; filename="' + draw(framed) + b'"'
        out += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n"
        out += value + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary.decode()


def _post(client: FlaskClient, path: str, body: bytes, content_type: str) -> None:
    response = client.post(
        path,
        input_stream=io.BytesIO(body),
        content_type=content_type,
        environ_overrides=environ_with({}),
    )
    assert_clean_answer(response)
    csrf = " (CSRF)" if "Form expired" in response.get_data(as_text=True) else ""
    event(f"{path}: {response.status_code}{csrf}")


@fuzz(50)
@given(data=st.data())
def test_login_form_never_fails(journalist_rig: JournalistRig, data: st.DataObject) -> None:
    # A client of its own, without the admin's session.
    client = journalist_rig.app.test_client()
    found = TOKEN_RE.search(client.get("/login").get_data(as_text=True))
    assert found is not None
    body, content_type = data.draw(bodies(FIELDS["/login"], found.group(1)))
    _post(client, "/login", body, content_type)


@fuzz(100)
@given(data=st.data())
def test_logged_in_forms_never_fail(journalist_rig: JournalistRig, data: st.DataObject) -> None:
    rig = journalist_rig
    if data.draw(st.booleans()):
        path = data.draw(st.sampled_from(sorted(FIELDS)))
        names = FIELDS[path]
    else:
        form = data.draw(st.sampled_from(sorted(SOURCE_FORMS)))
        source = data.draw(st.sampled_from([rig.source_hex, "0" * 32]))
        path, names = f"/sources/{source}/{form}", SOURCE_FORMS[form]
    if path == "/login":
        path = "/account/passphrase"  # logged in: /login only redirects
        names = FIELDS[path]
    body, content_type = data.draw(bodies(names, rig.token))
    _post(rig.client, path, body, content_type)


@fuzz(80)
@given(
    query=st.one_of(
        hostile_bytes(100),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["q", "status", "starred", "unread", "assignee", "tag", "sort", "page", "done"]
                ),
                st.sampled_from(
                    [
                        "²",
                        "%C2%B2",
                        "\u0661",
                        "0",
                        "1",
                        "99999999999",
                        "all",
                        "me",
                        "%ff",
                        "\x00",
                        "a" * 3000,
                    ]
                ),
            ),
            max_size=5,
        ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs).encode()),
    )
)
def test_inbox_queries_never_fail(journalist_rig: JournalistRig, query: bytes) -> None:
    response = journalist_rig.client.get(
        "/", environ_overrides={"QUERY_STRING": query.decode("latin-1")}
    )
    assert_clean_answer(response)
    event(f"inbox: {response.status_code}")


def test_fields_are_names_the_forms_read() -> None:
    """Keeps FIELDS honest: every fuzzed path is a POST route of the app."""
    assert all(re.fullmatch(r"/[a-z/]+", path) for path in FIELDS)
