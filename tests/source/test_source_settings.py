"""The source app honours the instance settings (``tipbox.settings``), read per request.

Every test builds the app once and changes the settings under it with the domain calls an
admin page makes: each change must show on the next request, without a restart. Real
instance, database (each backend) and app; nothing mocked.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from tipbox import logo, settings
from tipbox.config import MIB, Config
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Meta
from tipbox.instance import InitResult, init_instance
from tipbox.models import Item
from tipbox.source import create_app
from tipbox.source.state import EXTENSION, SourceState
from tipbox.web import TipboxFlask

CODENAME_RE = re.compile(r'<p class="codename" lang="en">([^<]+)</p>')
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
ITEM_IDS_RE = re.compile(r'data-item-ids="([0-9a-f,]+)"')
SOURCE_ID_RE = re.compile(r'data-source-id="([0-9a-f]{32})"')
LOGO_RE = re.compile(r'<img class="logo" src="(/logo/([0-9a-f]{32})\.png)" alt="">')
LANG_LINK_RE = re.compile(r'<a href="[^"]*" lang="([a-z]+)" hreflang')


@pytest.fixture
def instance(db: Session, config: Config) -> InitResult:
    result = init_instance(db, config, name="Fresh Times", admin_username="admin")
    db.commit()
    return result


@pytest.fixture
def app(config: Config, instance: InitResult) -> Iterator[TipboxFlask]:
    made = create_app(config)
    yield made
    state: SourceState = made.extensions[EXTENSION]
    state.engine.dispose()


def _change(db: Session, config: Config, **changes: Any) -> None:
    """What an admin's form does: one checked update, committed."""
    settings.update(db, config, None, **changes)
    db.commit()


@dataclass
class Browser:
    """A test client that keeps the last CSRF token it was given."""

    app: TipboxFlask
    client: FlaskClient = field(init=False)
    token: str = ""

    def __post_init__(self) -> None:
        self.client = self.app.test_client()

    def get(self, path: str) -> TestResponse:
        response = self.client.get(path)
        found = TOKEN_RE.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        if not self.token:
            self.get("/")
        response = self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)
        found = TOKEN_RE.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def new_source(self) -> None:
        page = self.post("/generate").get_data(as_text=True)
        codename = CODENAME_RE.search(page)
        assert codename is not None
        assert self.post("/confirm", {"codename": codename.group(1)}).status_code == 303

    def submit(self, message: str, files: list[tuple[bytes, str]] | None = None) -> TestResponse:
        self.get("/submit")
        data: dict[str, Any] = {"message": message}
        if files:
            data["files"] = [(io.BytesIO(content), name) for content, name in files]
        return self.post("/submit", data, content_type="multipart/form-data")


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def _items(factory: sessionmaker[Session]) -> int:
    with factory() as db:
        return int(db.scalar(select(func.count()).select_from(Item)) or 0)


def _blob_files(config: Config) -> list[Path]:
    return [path for path in config.blob_dir.rglob("*") if path.is_file()]


# --- name, description, logo ---------------------------------------------------------------


def test_name_and_description_are_shown_as_plain_text(
    app: TipboxFlask, db: Session, config: Config
) -> None:
    browser = Browser(app)
    assert "<h1>Fresh Times</h1>" in _text(browser.get("/"))
    _change(
        db,
        config,
        name='<b>Times</b> & "Co"',
        description="We read everything.\n<script>alert(1)</script> <a href=x>link</a>",
    )
    page = _text(browser.get("/"))  # the same app: no restart
    assert "<h1>&lt;b&gt;Times&lt;/b&gt; &amp; &#34;Co&#34;</h1>" in page
    assert "<title>&lt;b&gt;Times&lt;/b&gt; &amp; &#34;Co&#34; — " in page
    assert (
        '<p class="description">We read everything.\n'
        "&lt;script&gt;alert(1)&lt;/script&gt; &lt;a href=x&gt;link&lt;/a&gt;</p>"
    ) in page
    assert "<script>alert" not in page
    assert "<b>Times" not in page
    _change(db, config, description="")
    assert 'class="description"' not in _text(browser.get("/"))


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_the_logo_is_served_by_its_hash_as_a_png_and_nothing_else(
    app: TipboxFlask, db: Session, config: Config
) -> None:
    browser = Browser(app)
    assert 'class="logo"' not in _text(browser.get("/"))
    first = logo.set_logo(db, config, None, _png((200, 0, 0)))
    db.commit()
    assert first.logo_hash is not None

    shown = LOGO_RE.search(_text(browser.get("/")))
    assert shown is not None
    assert shown.group(2) == first.logo_hash.hex()
    response = browser.client.get(shown.group(1))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Like every response: no browser cache keeps the newsroom's logo (DESIGN 2.9).
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert response.data == settings.logo_png(db, first.logo_hash)
    with Image.open(io.BytesIO(response.data)) as served:
        assert (served.format, served.size) == ("PNG", (40, 20))

    # Another logo: a new address; the old one is gone, and so is any made-up one.
    second = logo.set_logo(db, config, None, _png((0, 0, 200)))
    db.commit()
    assert second.logo_hash is not None
    assert f"/logo/{second.logo_hash.hex()}.png" in _text(browser.get("/"))
    assert browser.client.get(shown.group(1)).status_code == 404
    assert browser.client.get(f"/logo/{'0' * 32}.png").status_code == 404
    assert browser.client.get("/logo/not-a-hash.png").status_code == 404

    settings.remove_logo(db, config, None)
    db.commit()
    assert 'class="logo"' not in _text(browser.get("/"))
    assert browser.client.get(f"/logo/{second.logo_hash.hex()}.png").status_code == 404


# --- languages -----------------------------------------------------------------------------


def _page_language(page: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', page)
    assert found is not None
    return found.group(1)


def test_only_the_configured_languages_are_offered(
    app: TipboxFlask, db: Session, config: Config
) -> None:
    browser = Browser(app)
    assert LANG_LINK_RE.findall(_text(browser.get("/"))) == ["en", "ru", "kk"]
    _change(db, config, languages=["kk", "ru"])
    page = _text(browser.get("/"))
    assert _page_language(page) == "kk"  # the first offered is the default
    assert LANG_LINK_RE.findall(page) == ["kk", "ru"]
    assert _page_language(_text(browser.get("/?l=en"))) == "kk"  # not offered: ignored
    assert _page_language(_text(browser.get("/?l=ru"))) == "ru"
    assert _page_language(_text(browser.get("/key"))) == "ru"  # remembered
    # Russian is taken off: the remembered choice no longer counts.
    _change(db, config, languages=["en"])
    page = _text(browser.get("/key"))
    assert _page_language(page) == "en"
    assert LANG_LINK_RE.findall(page) == ["en"]
    # Error pages follow the settings too.
    assert _page_language(_text(browser.get("/no-such-page?l=kk"))) == "en"


# --- upload limits -------------------------------------------------------------------------


def test_the_configured_limits_are_shown_and_enforced(
    app: TipboxFlask, db: Session, config: Config, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.new_source()
    _change(db, config, max_files=2, max_file_bytes=MIB, max_message_chars=1000)
    page = _text(browser.get("/submit"))
    assert "up to 1,000 characters of text and up to 2 files at a time, each at most 1 MB" in page
    assert f'data-max-file-bytes="{MIB}" data-max-files="2" data-max-message-chars="1000"' in page
    ids = ITEM_IDS_RE.search(page)
    assert ids is not None
    assert len(ids.group(1).split(",")) == 3  # max_files + 1

    too_many = browser.submit("", [(b"a", "1.txt"), (b"b", "2.txt"), (b"c", "3.txt")])
    assert too_many.status_code == 400
    assert "you can send at most 2 at a time" in _text(too_many)
    too_long = browser.submit("x" * 1001)
    assert too_long.status_code == 400
    assert "at most 1,000 characters" in _text(too_long)
    too_big = browser.submit("", [(bytes(MIB + 1), "big.bin")])
    assert too_big.status_code == 413
    assert "each file may be at most 1 MB" in _text(too_big)
    # The body bound follows the settings too: far below the configuration's, refused
    # before it is read.
    huge = browser.submit("", [(bytes(8 * MIB), "huge.bin")])
    assert huge.status_code == 413
    assert "Each file: at most 1 MB." in _text(huge)
    assert _items(session_factory) == 0
    assert _blob_files(config) == []

    assert browser.submit("fits", [(bytes(MIB), "ok.bin")]).status_code == 303
    assert _items(session_factory) == 2


# --- files not accepted --------------------------------------------------------------------


FILES_OFF = "This newsroom accepts messages only, not files."


def test_with_files_off_the_form_has_no_file_field_and_the_server_path_refuses_files(
    app: TipboxFlask, db: Session, config: Config, session_factory: sessionmaker[Session]
) -> None:
    browser = Browser(app)
    browser.new_source()
    _change(db, config, files_accepted=False)
    page = _text(browser.get("/submit"))
    assert 'type="file"' not in page
    assert 'name="files"' not in page
    assert FILES_OFF in page
    assert "<h1>Send a message</h1>" in page
    assert 'data-max-files="0"' in page
    ids = ITEM_IDS_RE.search(page)
    assert ids is not None
    assert len(ids.group(1).split(",")) == 1  # the message's id only

    refused = browser.submit("with an attachment", [(b"%PDF-1.7 secret", "leak.pdf")])
    assert refused.status_code == 400
    answer = _text(refused)
    assert "Nothing was sent." in answer
    assert "send it without files" in answer
    assert 'id="submit-form"' in answer  # the form again, the session kept
    assert _items(session_factory) == 0
    assert _blob_files(config) == []

    assert browser.submit("just the message").status_code == 303
    assert _items(session_factory) == 1
    # Files back on: the field is back.
    _change(db, config, files_accepted=True)
    assert 'type="file"' in _text(browser.get("/submit"))


def _browser_post(
    browser: Browser, instance: InitResult, items: list[tuple[int, bytes]]
) -> TestResponse:
    """What the page's script posts for ``items`` (kind, content), made with the envelope."""
    page = _text(browser.get("/submit"))
    ids_found, source_found = ITEM_IDS_RE.search(page), SOURCE_ID_RE.search(page)
    assert ids_found is not None
    assert source_found is not None
    item_ids = [bytes.fromhex(item_id) for item_id in ids_found.group(1).split(",")]
    # With files off the page issues one id; a second item gets one never issued.
    item_ids += [bytes(range(16, 32))] * len(items)
    source_id = bytes.fromhex(source_found.group(1))
    entries, data = [], {}
    for index, (kind, content) in enumerate(items):
        key = envelope.new_content_key()
        ad = envelope.additional_data(kind, source_id, item_ids[index])
        body = io.BytesIO()
        info = envelope.encrypt_body(key, ad, content, body)
        name, media = ("", envelope.TEXT_MEDIA_TYPE) if kind == 1 else ("a.pdf", "application/pdf")
        meta = envelope.seal_meta(key, ad, Meta(name, media, info.plain_length))
        wrap = envelope.wrap_key(key, instance.newsroom.x25519)
        entries.append(
            {
                "item_id": item_ids[index].hex(),
                "kind": kind,
                "key_id": instance.newsroom.key_id.hex(),
                "sealed_meta": base64.b64encode(meta).decode(),
                "wrap": base64.b64encode(wrap).decode(),
                "part": f"blob{index}",
            }
        )
        data[f"blob{index}"] = (io.BytesIO(body.getvalue()), "blob", "application/octet-stream")
    manifest = {"version": 1, "source_id": source_id.hex(), "items": entries}
    fields = {"mode": "browser", "manifest": json.dumps(manifest), **data}
    return browser.post("/submit", fields, content_type="multipart/form-data")


@pytest.mark.parametrize(
    "items",
    [
        [(1, b"a message"), (2, b"%PDF-1.7 a file")],  # refused by the request class
        [(2, b"%PDF-1.7 a file alone")],  # refused when the manifest is checked
    ],
)
def test_with_files_off_the_browser_path_refuses_files(
    app: TipboxFlask,
    db: Session,
    config: Config,
    instance: InitResult,
    session_factory: sessionmaker[Session],
    items: list[tuple[int, bytes]],
) -> None:
    browser = Browser(app)
    browser.new_source()
    _change(db, config, files_accepted=False)
    refused = _browser_post(browser, instance, items)
    assert refused.status_code == 400
    # The script shows the text of the page's alert: it must say why.
    alert = re.search(r'role="alert">\s*<p>(.*?)</p>', _text(refused), re.S)
    assert alert is not None
    assert FILES_OFF in alert.group(1)
    assert _items(session_factory) == 0
    assert _blob_files(config) == []
    # A message alone still goes through on the browser path.
    assert _browser_post(browser, instance, [(1, b"only words")]).status_code == 303
    assert _items(session_factory) == 1
