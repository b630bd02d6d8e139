"""Replies: a journalist writes one, the source reads it verified, or sees it flagged.

``tipbox.conversations.add_reply`` (journalist side) and ``tipbox.source_replies``
(source side), on a real database and blob store.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tipbox import conversations, source_replies, sources
from tipbox.accounts import create_journalist
from tipbox.config import TEST_KDF, Config
from tipbox.crypto import envelope
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.models import DirectoryEntry, Item, Journalist, Source, Wrap, today
from tipbox.storage import FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission, sent_count

from .opened import open_instance

LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=1024 * 1024)


@dataclass
class Desk:
    """An instance, its admin's unlocked keys and one source (with its seed)."""

    db: Session
    store: FilesystemBlobStore
    identity: PublicKeys
    identity_keys: KeyPair
    newsroom: KeyPair
    admin: Journalist
    admin_keys: KeyPair
    source_id: bytes
    source_seed: bytes

    def reply(self, text: str, source_id: bytes | None = None) -> bytes:
        item_id = conversations.add_reply(
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

    def replies(self) -> list[source_replies.ReplyView]:
        return source_replies.replies(
            self.db, self.store, self.identity, self.source_id, self.source_seed
        )


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
        opened.source.seed,
    )


def test_reply_is_read_verified_oldest_first(desk: Desk) -> None:
    accept_server_submission(
        desk.db, desk.store, desk.identity, desk.source_id, "a tip", [], LIMITS
    )
    desk.db.commit()
    first = desk.reply("Спасибо! We got it.")
    second = desk.reply("One more question…")
    views = desk.replies()
    assert [(v.item_id, v.text, v.verified) for v in views] == [
        (first, "Спасибо! We got it.", True),
        (second, "One more question…", True),
    ]
    assert all(v.created_on == today() for v in views)
    # Items share the source's sequence; replies are not counted as sent by the source.
    assert list(desk.db.scalars(select(Item.seq).order_by(Item.seq))) == [1, 2, 3]
    assert sent_count(desk.db, desk.source_id) == 1


def test_reply_is_wrapped_to_newsroom_and_source_and_signed(desk: Desk) -> None:
    item_id = desk.reply("hello")
    item = desk.db.scalars(select(Item).where(Item.public_id == item_id)).one()
    source_key = keypair_from_seed(Role.SOURCE, desk.source_seed)
    wraps = {
        key_id: wrap
        for key_id, wrap in desk.db.execute(
            select(Wrap.key_id, Wrap.wrap).where(Wrap.item_id == item.id)
        )
    }
    assert set(wraps) == {desk.newsroom.key_id, source_key.key_id}
    assert item.kind == envelope.Kind.REPLY
    assert item.signer_key_id == desk.admin_keys.key_id
    assert item.author_journalist_id == desk.admin.id
    with desk.store.open(item.blob_id) as blob:
        sealed = envelope.SealedItem(
            envelope.Kind.REPLY,
            desk.source_id,
            item_id,
            item.sealed_meta,
            blob.read(),
            wraps,
            item.signature,
        )
    signer = desk.admin_keys.public.ed25519
    # The newsroom opens it too, with the same signature check.
    assert (
        envelope.open_text(
            sealed, desk.newsroom.key_id, desk.newsroom.x25519_private, signer_public=signer
        )
        == "hello"
    )


def _flagged(desk: Desk) -> list[tuple[str | None, bool]]:
    return [(v.text, v.verified) for v in desk.replies()]


def test_altered_signature_is_flagged(desk: Desk) -> None:
    item_id = desk.reply("signed")
    desk.reply("untouched")
    signature = desk.db.scalar(select(Item.signature).where(Item.public_id == item_id))
    assert signature is not None
    altered = bytes([signature[0] ^ 1]) + signature[1:]
    desk.db.execute(update(Item).where(Item.public_id == item_id).values(signature=altered))
    desk.db.commit()
    assert _flagged(desk) == [(None, False), ("untouched", True)]


def test_reply_signed_by_an_unverified_key_is_flagged(desk: Desk) -> None:
    desk.reply("one")
    # The signer's directory entry stops verifying.
    desk.db.execute(
        update(DirectoryEntry)
        .where(DirectoryEntry.key_id == desk.admin_keys.key_id)
        .values(signature=bytes(64))
    )
    desk.db.commit()
    assert _flagged(desk) == [(None, False)]


def test_reply_of_a_removed_journalist_is_flagged(desk: Desk) -> None:
    desk.reply("one")
    desk.db.execute(delete(DirectoryEntry).where(DirectoryEntry.key_id == desk.admin_keys.key_id))
    desk.db.commit()
    assert _flagged(desk) == [(None, False)]


def test_reply_claiming_a_non_journalist_signer_is_flagged(desk: Desk) -> None:
    item_id = desk.reply("one")
    desk.db.execute(
        update(Item).where(Item.public_id == item_id).values(signer_key_id=desk.identity.key_id)
    )
    desk.db.commit()
    assert _flagged(desk) == [(None, False)]


def test_damaged_or_missing_blob_is_flagged(desk: Desk) -> None:
    first = desk.reply("one")
    second = desk.reply("two")
    blobs = {
        public_id: blob_id
        for public_id, blob_id in desk.db.execute(
            select(Item.public_id, Item.blob_id).where(Item.public_id.in_([first, second]))
        )
    }
    desk.store.delete(blobs[first])
    path = desk.store.path(blobs[second])
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    assert _flagged(desk) == [(None, False), (None, False)]


def test_replies_need_the_sources_own_key(desk: Desk) -> None:
    desk.reply("one")
    other = sources.create_source(desk.db)
    desk.db.commit()
    wrong_seed = source_replies.replies(
        desk.db, desk.store, desk.identity, desk.source_id, other.seed
    )
    assert wrong_seed == []
    assert (
        source_replies.replies(desk.db, desk.store, desk.identity, other.public_id, other.seed)
        == []
    )
    assert source_replies.replies(desk.db, desk.store, desk.identity, bytes(16), other.seed) == []


def test_hide_reply_deletes_only_the_sources_wrap(desk: Desk) -> None:
    hidden = desk.reply("hide me")
    kept = desk.reply("keep me")
    other = sources.create_source(desk.db)
    desk.db.commit()
    others_reply = desk.reply("for someone else", other.public_id)
    # Another source cannot hide it, nor can a message id or an unknown id be hidden.
    assert not source_replies.hide_reply(desk.db, desk.store, desk.source_id, others_reply)
    assert not source_replies.hide_reply(desk.db, desk.store, desk.source_id, bytes(16))
    assert not source_replies.hide_reply(desk.db, desk.store, bytes(16), hidden)
    assert source_replies.hide_reply(desk.db, desk.store, desk.source_id, hidden)
    desk.db.commit()
    assert not source_replies.hide_reply(desk.db, desk.store, desk.source_id, hidden)
    assert [v.item_id for v in desk.replies()] == [kept]
    item = desk.db.scalars(select(Item).where(Item.public_id == hidden)).one()
    remaining = set(desk.db.scalars(select(Wrap.key_id).where(Wrap.item_id == item.id)))
    assert remaining == {desk.newsroom.key_id}
    assert desk.store.exists(item.blob_id)
    assert desk.db.scalar(select(func.count()).select_from(Wrap)) == 5


def test_add_reply_refusals(desk: Desk, config: Config) -> None:
    with pytest.raises(ValueError, match="text"):
        desk.reply("  \n")
    with pytest.raises(ValueError, match="source"):
        desk.reply("hello", bytes(16))
    other = create_journalist(
        desk.db,
        desk.identity_keys,
        "other",
        is_admin=False,
        cost=TEST_KDF,
        must_change_passphrase=False,
    )
    desk.db.commit()
    # Signing with someone else's key, or with a key the directory disagrees with.
    with pytest.raises(Rejected, match=r"^reply\.author"):
        conversations.add_reply(
            desk.db, desk.store, desk.identity, desk.admin, other.keypair, desk.source_id, "x"
        )
    desk.db.execute(
        update(DirectoryEntry)
        .where(DirectoryEntry.key_id == desk.admin_keys.key_id)
        .values(signature=bytes(64))
    )
    with pytest.raises(Rejected):
        desk.reply("x")
    desk.db.rollback()
    assert desk.db.scalar(select(func.count()).select_from(Item)) == 0
    assert list(desk.store.ids()) == []


def test_reply_blob_is_removed_when_the_transaction_rolls_back(desk: Desk) -> None:
    conversations.add_reply(
        desk.db, desk.store, desk.identity, desk.admin, desk.admin_keys, desk.source_id, "x"
    )
    assert len(list(desk.store.ids())) == 1
    desk.db.rollback()
    assert list(desk.store.ids()) == []
    assert desk.db.scalar(select(func.count()).select_from(Source)) == 1
