"""The inbox and a source's conversation pages, through Flask's test client.

Real instance, database (SQLite, and PostgreSQL when configured) and blob store; sources
submit through the real server path (``accept_server_submission``) and read replies
through ``tipbox.source_replies``. Every response is checked for the exact journalist
headers by ``Browser``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from journalist_ui.inbox import DownloadAbortedError
from tipbox import directory, source_replies, sources
from tipbox.accounts import unlock_journalist
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind
from tipbox.instance import InitResult
from tipbox.models import Item, Source, Wrap, today
from tipbox.sources import NewSource
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import EncryptingUpload, Limits, accept_server_submission
from tipbox.web import TipboxFlask

from .test_auth_web import Browser, app, instance, logged_in, row  # noqa: F401

MIB = 1024 * 1024
LIMITS = Limits(max_message_chars=10_000, max_files=3, max_file_bytes=4 * MIB)
SCRIPT = "<script>alert(1)</script>"
RLO_NAME = "x\u202elmth.html"
HTML_CONTENT = b"<html><body><script>alert(1)</script>" + b"<p>hi</p>" * 20_000 + b"</html>"
UNVERIFIED = "Unverified: this item's signature does not check out; it is not shown"


@dataclass
class Tip:
    """A source that submitted: its session material and item ids."""

    source: NewSource
    item_ids: list[bytes]

    @property
    def path(self) -> str:
        return f"/sources/{self.source.public_id.hex()}"


def submit(
    db: Session, store: FilesystemBlobStore, message: str, files: dict[str, bytes] | None = None
) -> Tip:
    """A new source submitting ``message`` and ``files`` through the server path."""
    new = sources.create_source(db)
    db.commit()
    identity = directory.identity_public(db)
    uploads = []
    for name, content in (files or {}).items():
        upload = EncryptingUpload(store, new.public_id, name, "text/html", LIMITS.max_file_bytes)
        for start in range(0, len(content), 65_536):
            upload.write(content[start : start + 65_536])
        upload.finish()
        uploads.append(upload)
    receipt = accept_server_submission(db, store, identity, new.public_id, message, uploads, LIMITS)
    db.commit()
    return Tip(new, list(receipt.item_ids))


@pytest.fixture
def browser(app: TipboxFlask, db: Session, instance: InitResult) -> Browser:  # noqa: F811
    return logged_in(app, db, instance)


def page(browser: Browser, path: str) -> str:
    response = browser.get(path)
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_inbox_lists_a_source_that_submitted(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "hello")
    submit(db, blob_store, "other", {"a.txt": b"a"})
    html = page(browser, "/")
    assert f'href="{tip.path}"' in html
    designation = db.scalars(
        select(Source.designation).where(Source.public_id == tip.source.public_id)
    ).one()
    assert designation is not None
    assert designation in html
    assert today().isoformat() in html
    assert "Inbox coming soon" not in html
    # Search by designation: only the matching source.
    found = page(browser, f"/?q={designation}")
    assert f'href="{tip.path}"' in found
    assert len(re.findall(r'href="/sources/[0-9a-f]{32}"', found)) == 1
    assert browser.get("/?page=0").status_code == 400
    assert "No sources found." in page(browser, "/?page=2")


def test_a_message_is_shown_as_text(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, f"look {SCRIPT}\nsecond line")
    html = page(browser, tip.path)
    assert SCRIPT not in html
    assert "look &lt;script&gt;alert(1)&lt;/script&gt;\nsecond line" in html
    assert '<div class="item-text">' in html


def test_a_file_is_listed_safely_and_downloads_as_an_attachment(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "", {RLO_NAME: HTML_CONTENT})
    (file_id,) = tip.item_ids
    html = page(browser, tip.path)
    assert "xlmth.html" in html
    assert "\u202e" not in html
    assert "docs/opening-files.md" in html
    assert f'href="/items/{file_id.hex()}/download"' in html
    response = browser.get(f"/items/{file_id.hex()}/download")
    assert response.status_code == 200
    assert response.is_streamed
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; ")
    assert "xlmth.html" in disposition
    assert "\u202e" not in disposition
    assert "%E2%80%AE" not in disposition.upper()
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("Cache-Control") == ["no-store"]
    assert response.headers["Content-Length"] == str(len(HTML_CONTENT))
    assert response.get_data() == HTML_CONTENT


def test_a_damaged_download_never_completes(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    content = os.urandom(3 * MIB)
    tip = submit(db, blob_store, "", {"big.bin": content})
    (file_id,) = tip.item_ids
    blob_id = db.scalars(select(Item.blob_id).where(Item.public_id == file_id)).one()
    path = blob_store.path(blob_id)
    data = bytearray(path.read_bytes())
    data[-100] ^= 1  # inside the last chunk: found only while streaming
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    with pytest.raises(DownloadAbortedError):
        browser.get(f"/items/{file_id.hex()}/download").get_data()
    # A truncated blob is caught before streaming starts.
    del data[-1]
    path.write_bytes(bytes(data))
    assert browser.get(f"/items/{file_id.hex()}/download").status_code == 409
    assert browser.get(f"/items/{os.urandom(16).hex()}/download").status_code == 404


def test_a_reply_through_the_form_is_verified_and_reaches_the_source(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "hello")
    response = browser.post(f"{tip.path}/reply", {"text": "Thanks <b>for</b> this"})
    assert response.status_code == 303
    html = page(browser, tip.path)
    assert "Thanks &lt;b&gt;for&lt;/b&gt; this" in html
    assert "Reply by admin" in html
    assert "Unverified" not in html
    db.rollback()
    identity = directory.identity_public(db)
    (reply,) = source_replies.replies(
        db, blob_store, identity, tip.source.public_id, tip.source.seed
    )
    assert reply.verified
    assert reply.text == "Thanks <b>for</b> this"
    # A note appears for journalists only.
    assert browser.post(f"{tip.path}/note", {"text": "check legal"}).status_code == 303
    assert "check legal" in page(browser, tip.path)
    db.rollback()
    assert (
        len(source_replies.replies(db, blob_store, identity, tip.source.public_id, tip.source.seed))
        == 1
    )
    # An empty reply is refused, nothing stored.
    assert browser.post(f"{tip.path}/reply", {"text": "  "}).status_code == 400


def test_a_reply_with_a_corrupted_signature_is_flagged(
    browser: Browser,
    db: Session,
    blob_store: FilesystemBlobStore,
    instance: InitResult,  # noqa: F811
) -> None:
    tip = submit(db, blob_store, "hello")
    identity = directory.identity_public(db)
    admin = row(db)
    keys = unlock_journalist(db, identity, admin, instance.admin.passphrase).keypair
    newsroom = directory.current_newsroom_key(db, identity)
    source = db.scalars(select(Source).where(Source.public_id == tip.source.public_id)).one()
    sealed = envelope.seal_text(
        Kind.REPLY,
        source.public_id,
        os.urandom(16),
        "pay the bearer",
        {newsroom.key_id: newsroom.x25519},
        signing_key=keys.signing_key,
    )
    assert sealed.signature is not None
    blob_id = blob_store.new_id()
    with blob_store.writer(blob_id) as out:
        out.write(sealed.blob)
    item = Item(
        public_id=sealed.item_id,
        source_id=source.id,
        seq=source.next_seq,
        kind=int(Kind.REPLY),
        version=envelope.VERSION,
        blob_id=blob_id,
        blob_size=len(sealed.blob),
        sealed_meta=sealed.sealed_meta,
        signer_key_id=keys.key_id,
        signature=bytes([sealed.signature[0] ^ 0x80]) + sealed.signature[1:],
        author_journalist_id=admin.id,
        created_on=today(),
    )
    source.next_seq += 1
    db.add(item)
    db.flush()
    for key_id, wrap in sealed.wraps.items():
        db.add(Wrap(item_id=item.id, key_id=key_id, wrap=wrap))
    db.commit()
    html = page(browser, tip.path)
    assert UNVERIFIED in html
    assert "pay the bearer" not in html


def _count(db: Session, source_public_id: bytes) -> int:
    db.rollback()
    return (
        db.scalar(
            select(func.count(Item.id))
            .join(Source, Source.id == Item.source_id)
            .where(Source.public_id == source_public_id)
        )
        or 0
    )


def test_deleting_a_source_removes_its_rows_and_blobs(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip = submit(db, blob_store, "hello", {"a.pdf": b"%PDF"})
    keep = submit(db, blob_store, "stay")
    blob_ids = list(db.scalars(select(Item.blob_id).where(Item.public_id.in_(tip.item_ids))))
    assert all(blob_store.path(blob_id).exists() for blob_id in blob_ids)
    # Not one click: without the confirmation nothing happens.
    assert browser.post(f"{tip.path}/delete").status_code == 400
    assert _count(db, tip.source.public_id) == 2
    response = browser.post(f"{tip.path}/delete", {"confirm": "yes"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/?done=source-deleted"
    db.rollback()
    assert db.scalar(select(Source.id).where(Source.public_id == tip.source.public_id)) is None
    assert db.scalar(select(func.count(Item.id)).where(Item.public_id.in_(tip.item_ids))) == 0
    assert not any(blob_store.path(blob_id).exists() for blob_id in blob_ids)
    assert browser.get(tip.path).status_code == 404
    assert _count(db, keep.source.public_id) == 1


def test_deleting_one_item(browser: Browser, db: Session, blob_store: FilesystemBlobStore) -> None:
    tip = submit(db, blob_store, "first", {"a.pdf": b"%PDF"})
    message_id, _file_id = tip.item_ids
    path = f"/items/{message_id.hex()}/delete"
    assert browser.post(path).status_code == 400
    response = browser.post(path, {"confirm": "yes"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(tip.path)
    assert _count(db, tip.source.public_id) == 1
    assert "first" not in page(browser, tip.path).split("<ol")[1]
    assert browser.post(path, {"confirm": "yes"}).status_code == 404


def _paths(db: Session, blob_store: FilesystemBlobStore) -> tuple[Tip, list[str], list[str]]:
    tip = submit(db, blob_store, "hello", {"a.pdf": b"%PDF"})
    message_id, file_id = tip.item_ids
    gets = ["/", "/?q=x&page=2", tip.path, f"/items/{file_id.hex()}/download"]
    posts = [
        f"{tip.path}/reply",
        f"{tip.path}/note",
        f"{tip.path}/delete",
        f"/items/{message_id.hex()}/delete",
    ]
    return tip, gets, posts


def test_every_page_needs_a_session(
    app: TipboxFlask,  # noqa: F811
    db: Session,
    instance: InitResult,  # noqa: F811
    blob_store: FilesystemBlobStore,
) -> None:
    tip, gets, posts = _paths(db, blob_store)
    anonymous = Browser(app, db)
    for path in gets:
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/login"), path
    for path in posts:
        response = anonymous.post(path, {"text": "x", "confirm": "yes"})
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/login"), path
    assert _count(db, tip.source.public_id) == 2


def test_posts_without_a_csrf_token_are_refused(
    browser: Browser, db: Session, blob_store: FilesystemBlobStore
) -> None:
    tip, gets, posts = _paths(db, blob_store)
    for path in gets:
        assert browser.get(path).status_code == 200, path
    for path in posts:
        response = browser.post(path, {"text": "x", "confirm": "yes"}, csrf=False)
        assert response.status_code == 400, path
    assert _count(db, tip.source.public_id) == 2


def test_unknown_ids_are_404(browser: Browser) -> None:
    unknown = os.urandom(16).hex()
    assert browser.get(f"/sources/{unknown}").status_code == 404
    assert browser.get("/sources/NOT-HEX").status_code == 404
    assert browser.post(f"/sources/{unknown}/reply", {"text": "hi"}).status_code == 404
    assert browser.post(f"/sources/{unknown}/delete", {"confirm": "yes"}).status_code == 404
