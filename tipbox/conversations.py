"""What a journalist does to a source: reply (more to come: read, note, delete).

Private side: the journalist's key pair is passed in by the journalist app (opened from
its split-key session); the source app may not import this module (.importlinter).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role
from tipbox.items import NewItem, store_items
from tipbox.models import Journalist, Source, new_public_id
from tipbox.storage import BlobStore

__all__ = ["add_reply"]


def _check_author(
    session: Session, identity: PublicKeys, author: Journalist, keypair: KeyPair
) -> None:
    """The key that signs must be the author's, as its verified directory entry says, so
    that the source can verify the reply."""
    if author.key_id is None or keypair.key_id != author.key_id or not author.is_active:
        raise Rejected("reply.author: the key pair is not this journalist's current key")
    entry = directory.entry(session, identity, author.key_id)
    if entry.role != Role.JOURNALIST or entry.public != keypair.public:
        raise Rejected("reply.author: the directory disagrees with the key pair")


def add_reply(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    author: Journalist,
    author_keypair: KeyPair,
    source_public_id: bytes,
    text: str,
) -> bytes:
    """Reply to a source; return the reply's item public id.

    The reply is signed with the author's Ed25519 key and wrapped to the current newsroom
    key (verified) and to the source's key. Its blob is written first and removed again if
    the rows are not stored. Raises ``ValueError`` for an empty reply or unknown source.
    """
    if not text.strip():
        raise ValueError("a reply needs some text")
    _check_author(session, identity, author, author_keypair)
    # Locked and re-read: the reply takes the source's next seq.
    source = session.scalars(
        select(Source)
        .where(Source.public_id == source_public_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if source is None:
        raise ValueError("no such source")
    newsroom = directory.current_newsroom_key(session, identity)
    # Sources have no directory entry: their key is the one their codename derived, which
    # login checks against this stored public key (envelope.md 6).
    source_key = PublicKeys(Role.SOURCE, source.x25519)
    sealed = envelope.seal_text(
        Kind.REPLY,
        source.public_id,
        new_public_id(),
        text,
        {newsroom.key_id: newsroom.x25519, source_key.key_id: source_key.x25519},
        signing_key=author_keypair.signing_key,
    )
    blob_id = store.new_id()
    with store.writer(blob_id) as out:
        out.write(sealed.blob)
    item = NewItem(
        public_id=sealed.item_id,
        kind=Kind.REPLY,
        blob_id=blob_id,
        blob_size=len(sealed.blob),
        sealed_meta=sealed.sealed_meta,
        wraps=sealed.wraps,
        signer_key_id=author_keypair.key_id,
        signature=sealed.signature,
        author_journalist_id=author.id,
    )
    # store_items deletes the blob if the rows fail, or if the transaction never commits.
    store_items(session, store, source, [item], source_activity=False)
    return sealed.item_id
