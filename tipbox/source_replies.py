"""A source's view of the newsroom's replies: open with its own key, check, hide.

A reply is wrapped to the current newsroom key and to the source's key (envelope.md 8.4),
and signed by its journalist. The source opens its wrap with the key its codename gives
(kept in its session) and trusts a reply only if the signature verifies against the
journalist's verified directory entry (DESIGN invariant 7); anything else is shown as
damaged, never as text.

Public side: the only private key used here is the source's own, passed in by the caller.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind, SealedItem
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.db_roles import HIDE_REPLY_FUNCTION
from tipbox.models import KIND_REPLY, Item, Source, Wrap
from tipbox.storage import BlobStore

__all__ = ["MAX_REPLY_BLOB_BYTES", "ReplyView", "hide_reply", "replies"]

# Replies are text; a blob larger than this is not read into memory, only flagged.
MAX_REPLY_BLOB_BYTES: Final = envelope.blob_length(4 * 1024 * 1024)


@dataclass(frozen=True)
class ReplyView:
    """One reply as the source sees it: ``text`` None and ``verified`` False if damaged."""

    item_id: bytes
    created_on: date
    text: str | None
    verified: bool


def _source(session: Session, source_public_id: bytes) -> Source | None:
    return session.scalars(select(Source).where(Source.public_id == source_public_id)).one_or_none()


def _source_key_id(source: Source) -> bytes:
    return PublicKeys(Role.SOURCE, source.x25519).key_id


def replies(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    source_public_id: bytes,
    source_seed: bytes,
) -> list[ReplyView]:
    """The source's replies, oldest first, each opened and its signature checked.

    ``source_seed`` is the seed from the source's session. A reply that does not open,
    whose signer has no verified journalist entry, or whose signature does not verify is
    listed with ``text`` None and ``verified`` False.
    """
    source = _source(session, source_public_id)
    keypair = keypair_from_seed(Role.SOURCE, source_seed)
    if source is None or not hmac.compare_digest(keypair.x25519_public, source.x25519):
        return []
    rows = session.execute(
        select(Item, Wrap.wrap)
        .join(Wrap, Wrap.item_id == Item.id)
        .where(
            Item.source_id == source.id,
            Item.kind == KIND_REPLY,
            Wrap.key_id == keypair.key_id,
        )
        .order_by(Item.seq)
    ).all()
    return [
        _view(session, store, identity, keypair, source.public_id, item, wrap)
        for item, wrap in rows
    ]


def _view(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    keypair: KeyPair,
    source_id: bytes,
    item: Item,
    wrap: bytes,
) -> ReplyView:
    try:
        text = _open(session, store, identity, keypair, source_id, item, wrap)
    except (Rejected, OSError):  # a missing or unreadable blob is damage too
        return ReplyView(item.public_id, item.created_on, None, False)
    return ReplyView(item.public_id, item.created_on, text, True)


def _open(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    keypair: KeyPair,
    source_id: bytes,
    item: Item,
    wrap: bytes,
) -> str:
    if item.version != envelope.VERSION or item.signer_key_id is None or item.signature is None:
        raise Rejected("reply.row: unsupported version or no signature")
    signer = directory.journalist_signer(session, identity, item.signer_key_id)
    if item.blob_size > MAX_REPLY_BLOB_BYTES:
        raise Rejected("reply.size: blob too large for a reply")
    with store.open(item.blob_id) as handle:
        # The signature covers H(blob): the whole blob is read and checked before
        # anything is decrypted (envelope.md 8.5).
        blob = handle.read(MAX_REPLY_BLOB_BYTES + 1)
    sealed = SealedItem(
        kind=Kind.REPLY,
        source_id=source_id,
        item_id=item.public_id,
        sealed_meta=item.sealed_meta,
        blob=blob,
        wraps={keypair.key_id: wrap},
        signature=item.signature,
    )
    return envelope.open_text(
        sealed, keypair.key_id, keypair.x25519_private, signer_public=signer.ed25519
    )


def hide_reply(
    session: Session, store: BlobStore, source_public_id: bytes, item_public_id: bytes
) -> bool:
    """Delete this source's wrap of reply ``item_public_id``; return whether there was one.

    The reply itself, its blob and the newsroom's wrap stay: the newsroom keeps its
    conversation, the source can no longer open the reply.
    """
    source = _source(session, source_public_id)
    if source is None:
        return False
    if _has_hide_function(session):
        # Under the source app's restricted role (tipbox.db_roles): no DELETE on wraps.
        return bool(
            session.scalar(
                select(
                    getattr(func, HIDE_REPLY_FUNCTION)(
                        source_public_id, item_public_id, _source_key_id(source)
                    )
                )
            )
        )
    item_id = session.scalar(
        select(Item.id).where(
            Item.public_id == item_public_id,
            Item.source_id == source.id,
            Item.kind == KIND_REPLY,
        )
    )
    if item_id is None:
        return False
    result = cast(
        "CursorResult[Any]",
        session.execute(
            delete(Wrap).where(Wrap.item_id == item_id, Wrap.key_id == _source_key_id(source))
        ),
    )
    return result.rowcount > 0


def _has_hide_function(session: Session) -> bool:
    """Whether the database has ``tipbox_hide_reply`` (PostgreSQL with roles applied)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    signature = f"{HIDE_REPLY_FUNCTION}(bytea, bytea, bytea)"
    return session.scalar(select(func.to_regprocedure(signature).is_not(None))) is True
