"""A journalist's view of a source: read, download, note, delete (``tipbox.conversations``).

Real database (each backend) and blob store; nothing mocked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tipbox import conversations, sources
from tipbox.accounts import create_journalist
from tipbox.config import TEST_KDF, Config
from tipbox.conversations import ItemView, NotFound
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys
from tipbox.db import scrub
from tipbox.models import Item, Journalist, Source, Wrap, today
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import EncryptingUpload, Limits, accept_server_submission

from .opened import open_instance

MIB = 1024 * 1024
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=4 * MIB)


@dataclass
class Desk:
    """An instance, its admin's unlocked keys, the newsroom key pair and one source."""

    db: Session
    store: FilesystemBlobStore
    identity: PublicKeys
    identity_keys: KeyPair
    newsroom: KeyPair
    admin: Journalist
    admin_keys: KeyPair
    source_id: bytes

    def submit(self, message: str = "", files: dict[str, bytes] | None = None) -> list[bytes]:
        uploads = []
        for name, content in (files or {}).items():
            upload = EncryptingUpload(
                self.store, self.source_id, name, "application/pdf", LIMITS.max_file_bytes
            )
            for start in range(0, len(content), 100_000):
                upload.write(content[start : start + 100_000])
            upload.finish()
            uploads.append(upload)
        receipt = accept_server_submission(
            self.db, self.store, self.identity, self.source_id, message, uploads, LIMITS
        )
        self.db.commit()
        return list(receipt.item_ids)

    def write(self, kind: Kind, text: str, source_id: bytes | None = None) -> bytes:
        add = conversations.add_reply if kind == Kind.REPLY else conversations.add_note
        item_id = add(
            self.db,
            self.store,
            self.identity,
            self.admin,
            self.admin_keys,
            source_id or self.source_id,
            text,
        )
        self.db.commit()
        return item_id

    def view(self, source_id: bytes | None = None) -> list[ItemView]:
        return conversations.conversation(
            self.db, self.store, self.identity, self.admin_keys, source_id or self.source_id
        )

    def download(self, item_id: bytes) -> conversations.Download:
        return conversations.open_download(
            self.db, self.store, self.identity, self.admin_keys, item_id
        )

    def item(self, item_id: bytes) -> Item:
        return self.db.scalars(select(Item).where(Item.public_id == item_id)).one()

    def new_source(self) -> bytes:
        source_id = sources.create_source(self.db).public_id
        self.db.commit()
        return source_id


@pytest.fixture
def desk(db: Session, config: Config, blob_store: FilesystemBlobStore) -> Desk:
    opened = open_instance(db, config)
    return Desk(
        db,
        blob_store,
        opened.identity,
        opened.identity_keys,
        opened.newsroom,
        opened.admin,
        opened.admin_keys,
        opened.source.public_id,
    )


def _summary(view: ItemView) -> tuple[object, ...]:
    file = None if view.file is None else (view.file.name, view.file.media_type, view.file.size)
    return (view.kind, view.author, view.text, file, view.verified, view.damaged)


SCRIPT = '<script>alert("x")</script> & <b>hi</b>'


def test_conversation_shows_every_kind_in_order(desk: Desk) -> None:
    content = os.urandom(12_345)
    message_id, file_id = desk.submit(SCRIPT, {"x\u202elmth.html": content})
    reply_id = desk.write(Kind.REPLY, "Спасибо, получили.")
    note_id = desk.write(Kind.NOTE, "check with legal")
    views = desk.view()
    assert [v.item_id for v in views] == [message_id, file_id, reply_id, note_id]
    assert [v.seq for v in views] == [1, 2, 3, 4]
    assert all(v.created_on == today() for v in views)
    assert [_summary(v) for v in views] == [
        # Source content is returned as plain text: rendering escapes it, never parses it.
        (Kind.MESSAGE, None, SCRIPT, None, None, False),
        (Kind.FILE, None, None, ("xlmth.html", "application/pdf", 12_345), None, False),
        (Kind.REPLY, "admin", "Спасибо, получили.", None, True, False),
        (Kind.NOTE, "admin", "check with legal", None, True, False),
    ]
    with pytest.raises(NotFound):
        desk.view(bytes(16))


def _seal_reply_by_hand(desk: Desk, text: str) -> tuple[bytes, bytes]:
    """A reply row written straight into the database; returns (item id, signature)."""
    source = desk.db.scalars(select(Source).where(Source.public_id == desk.source_id)).one()
    sealed = envelope.seal_text(
        Kind.REPLY,
        desk.source_id,
        os.urandom(16),
        text,
        {desk.newsroom.key_id: desk.newsroom.x25519_public},
        signing_key=desk.admin_keys.signing_key,
    )
    assert sealed.signature is not None
    blob_id = desk.store.new_id()
    with desk.store.writer(blob_id) as out:
        out.write(sealed.blob)
    row = Item(
        public_id=sealed.item_id,
        source_id=source.id,
        seq=source.next_seq,
        kind=int(Kind.REPLY),
        version=envelope.VERSION,
        blob_id=blob_id,
        blob_size=len(sealed.blob),
        sealed_meta=sealed.sealed_meta,
        signer_key_id=desk.admin_keys.key_id,
        signature=bytes([sealed.signature[0] ^ 0x80]) + sealed.signature[1:],
        author_journalist_id=desk.admin.id,
        created_on=today(),
    )
    source.next_seq += 1
    desk.db.add(row)
    desk.db.flush()
    for key_id, wrap in sealed.wraps.items():
        desk.db.add(Wrap(item_id=row.id, key_id=key_id, wrap=wrap))
    desk.db.commit()
    return sealed.item_id, sealed.signature


def test_reply_with_a_corrupted_signature_is_flagged(desk: Desk) -> None:
    forged, _ = _seal_reply_by_hand(desk, "pay the bearer")
    good = desk.write(Kind.REPLY, "genuine")
    views = {v.item_id: v for v in desk.view()}
    # Flagged, its text withheld (DESIGN 2.7): not damaged, but never trusted.
    assert _summary(views[forged]) == (Kind.REPLY, "admin", None, None, False, False)
    assert _summary(views[good]) == (Kind.REPLY, "admin", "genuine", None, True, False)


def test_reply_or_note_credited_to_another_author_is_flagged(desk: Desk) -> None:
    other = create_journalist(
        desk.db,
        desk.identity_keys,
        "other",
        is_admin=False,
        cost=TEST_KDF,
        must_change_passphrase=False,
    )
    desk.db.commit()
    note = desk.write(Kind.NOTE, "mine")
    # The signature is the admin's, but the row now claims "other" wrote it.
    desk.db.execute(
        update(Item).where(Item.public_id == note).values(author_journalist_id=other.row.id)
    )
    desk.db.commit()
    (view,) = desk.view()
    assert _summary(view) == (Kind.NOTE, "other", None, None, False, False)


def _damage(desk: Desk, item_id: bytes, *, truncate: bool) -> None:
    path = desk.store.path(desk.item(item_id).blob_id)
    data = bytearray(path.read_bytes())
    if truncate:
        del data[-1]
    else:
        data[-100] ^= 1  # inside the last chunk
    path.chmod(0o600)
    path.write_bytes(bytes(data))


def test_damaged_file_is_listed_damaged_and_never_completes(desk: Desk) -> None:
    cut, flipped, gone = desk.submit(
        "", {"a.pdf": b"a" * 200_000, "b.pdf": os.urandom(3 * MIB), "c.pdf": b"c"}
    )
    message = desk.submit("still fine")[0]
    _damage(desk, cut, truncate=True)
    _damage(desk, flipped, truncate=False)
    desk.store.delete(desk.item(gone).blob_id)
    views = {v.item_id: v for v in desk.view()}
    assert views[cut].damaged
    assert views[cut].file is None
    assert views[gone].damaged
    assert views[message].text == "still fine"
    # Listings never read blobs: a flipped byte is found by the download, as it streams.
    assert not views[flipped].damaged
    for item_id in (cut, gone):
        with pytest.raises(Rejected):
            desk.download(item_id)
    download = desk.download(flipped)
    received: list[bytes] = []
    with pytest.raises(Rejected):
        received.extend(download.chunks())
    # Every chunk but the damaged last one came out before the failure.
    assert 0 < sum(map(len, received)) < download.size


@pytest.mark.parametrize("size", [3 * MIB, 0])
def test_download_returns_the_upload(desk: Desk, size: int) -> None:
    content = os.urandom(size)
    (file_id,) = desk.submit("", {"../отчёт\u202e.pdf": content})
    download = desk.download(file_id)
    assert download.filename == "отчёт.pdf"
    assert download.size == size
    assert download.media_type == "application/pdf"
    assert download.content_disposition.startswith('attachment; filename="file.pdf"; ')
    chunks = list(download.chunks())
    assert all(len(chunk) <= envelope.CHUNK_BYTES for chunk in chunks)
    assert b"".join(chunks) == content
    # Repeatable: each call reads the blob afresh.
    assert b"".join(download.chunks()) == content


def test_download_refusals(desk: Desk) -> None:
    message, file_id = desk.submit("hello", {"f.pdf": b"data"})
    with pytest.raises(NotFound):
        desk.download(message)
    with pytest.raises(NotFound):
        desk.download(bytes(16))
    # A journalist with no grant of the newsroom key opens nothing, and nothing raises.
    other = create_journalist(
        desk.db,
        desk.identity_keys,
        "nogrant",
        is_admin=False,
        cost=TEST_KDF,
        must_change_passphrase=False,
    )
    desk.db.commit()
    with pytest.raises(Rejected):
        conversations.open_download(desk.db, desk.store, desk.identity, other.keypair, file_id)
    views = conversations.conversation(
        desk.db, desk.store, desk.identity, other.keypair, desk.source_id
    )
    assert [(v.damaged, v.text, v.file) for v in views] == [(True, None, None)] * 2


def test_note_is_wrapped_only_to_the_newsroom_key(desk: Desk) -> None:
    note = desk.write(Kind.NOTE, "internal")
    item = desk.item(note)
    wraps = set(desk.db.scalars(select(Wrap.key_id).where(Wrap.item_id == item.id)))
    assert wraps == {desk.newsroom.key_id}
    assert item.kind == Kind.NOTE
    assert item.signer_key_id == desk.admin_keys.key_id
    assert item.author_journalist_id == desk.admin.id
    with pytest.raises(ValueError, match="note"):
        desk.write(Kind.NOTE, " \n")
    with pytest.raises(ValueError, match="source"):
        desk.write(Kind.NOTE, "x", bytes(16))
    other = create_journalist(
        desk.db,
        desk.identity_keys,
        "other",
        is_admin=False,
        cost=TEST_KDF,
        must_change_passphrase=False,
    )
    with pytest.raises(Rejected, match=r"^note\.author"):
        conversations.add_note(
            desk.db, desk.store, desk.identity, desk.admin, other.keypair, desk.source_id, "x"
        )


def _fill(desk: Desk, source_id: bytes) -> list[bytes]:
    desk.source_id, before = source_id, desk.source_id
    try:
        ids = desk.submit("tip", {"doc.pdf": os.urandom(70_000)})
        ids.append(desk.write(Kind.REPLY, "reply"))
        ids.append(desk.write(Kind.NOTE, "note"))
    finally:
        desk.source_id = before
    return ids


def test_deleting_a_source_leaves_nothing_that_opens(desk: Desk) -> None:
    doomed = _fill(desk, desk.source_id)
    kept_source = desk.new_source()
    kept = _fill(desk, kept_source)
    saved = {
        item.public_id: (item.blob_id, item.sealed_meta)
        for item in desk.db.scalars(select(Item).where(Item.public_id.in_(doomed)))
    }
    saved_wraps = desk.db.execute(
        select(Item.public_id, Wrap.wrap)
        .join(Wrap, Wrap.item_id == Item.id)
        .where(Item.public_id.in_(doomed), Wrap.key_id == desk.newsroom.key_id)
    ).all()
    assert len(saved_wraps) == 4
    assert conversations.delete_source(desk.db, desk.store, desk.source_id)
    # Blobs go only once the deletion is committed.
    assert all(desk.store.exists(blob_id) for blob_id, _ in saved.values())
    desk.db.commit()
    scrub(desk.db.get_bind())  # type: ignore[arg-type]
    assert not any(desk.store.exists(blob_id) for blob_id, _ in saved.values())
    assert desk.db.scalar(select(func.count()).select_from(Source)) == 1
    assert desk.db.scalar(select(func.count()).select_from(Wrap)) == 5  # the kept source's
    # A saved copy of a wrap still yields its key, but nothing is left for it to open.
    for public_id, wrap in saved_wraps:
        envelope.unwrap_key(wrap, desk.newsroom.x25519_private)
        assert desk.db.scalar(select(Item.id).where(Item.public_id == public_id)) is None
        with pytest.raises(NotFound):
            desk.download(public_id)
    with pytest.raises(NotFound):
        desk.view()
    assert not conversations.delete_source(desk.db, desk.store, desk.source_id)
    assert [v.item_id for v in desk.view(kept_source) if not v.damaged] == kept
    assert len(list(desk.store.ids())) == 4


def test_delete_item_removes_just_that_item(desk: Desk) -> None:
    message, file_id, reply, note = _fill(desk, desk.source_id)
    blob_id = desk.item(file_id).blob_id
    assert conversations.delete_item(desk.db, desk.store, file_id)
    desk.db.commit()
    assert not desk.store.exists(blob_id)
    assert [(v.item_id, v.damaged) for v in desk.view()] == [
        (message, False),
        (reply, False),
        (note, False),
    ]
    assert desk.db.scalar(select(func.count()).select_from(Wrap)) == 4
    assert len(list(desk.store.ids())) == 3
    assert not conversations.delete_item(desk.db, desk.store, file_id)


def test_rolled_back_delete_leaves_everything_openable(desk: Desk) -> None:
    ids = _fill(desk, desk.source_id)
    before = [_summary(v) for v in desk.view()]
    assert conversations.delete_source(desk.db, desk.store, desk.source_id)
    desk.db.rollback()
    assert conversations.delete_item(desk.db, desk.store, ids[1])
    desk.db.rollback()
    # A savepoint rolled back inside a transaction that commits keeps its blob too.
    with desk.db.begin_nested() as savepoint:
        conversations.delete_item(desk.db, desk.store, ids[1])
        savepoint.rollback()
    desk.db.commit()
    desk.write(Kind.NOTE, "later")  # another commit does not replay the forgotten deletes
    assert [_summary(v) for v in desk.view()][:4] == before
    assert len(list(desk.store.ids())) == 5
    download = desk.download(ids[1])
    assert len(b"".join(download.chunks())) == 70_000
