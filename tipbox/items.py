"""Store items: rows and wraps for blobs already written, all or nothing (DESIGN 2.10).

Shared by submissions (a source's messages and files) and conversations (replies, notes,
deletes). The rows go in a savepoint; a failure deletes every blob of the batch, and so
does a caller's transaction that ends without a commit. Deleted rows' blobs go only once
the deleting transaction commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from tipbox.crypto import envelope
from tipbox.crypto.envelope import Kind
from tipbox.models import WRAP_ALGORITHM, Item, Source, Wrap, today
from tipbox.storage import BlobStore


@dataclass(frozen=True)
class NewItem:
    """One item ready to store: its blob is already written under ``blob_id``."""

    public_id: bytes
    kind: Kind
    blob_id: str
    blob_size: int
    sealed_meta: bytes
    wraps: Mapping[bytes, bytes] = field(repr=False)
    signer_key_id: bytes | None = None
    signature: bytes | None = None
    author_journalist_id: int | None = None


# The kinds a source sends (the others are journalists' replies and notes).
_SOURCE_KINDS = (int(envelope.Kind.MESSAGE), int(envelope.Kind.FILE))


def store_items(
    session: Session,
    store: BlobStore,
    source: Source,
    items: Sequence[NewItem],
    *,
    source_activity: bool,
) -> None:
    """Add ``items`` (blobs already written) and their wraps to ``source``, all or nothing.

    ``source`` must have been read in this transaction with a row lock (``FOR UPDATE``,
    ``populate_existing``): items take its next ``seq`` numbers, in order, and today's
    date. The rows are added in a savepoint: if that fails, no row stays and every blob is
    deleted; if the caller's transaction then ends without a commit, the blobs are deleted
    too. ``source_activity`` marks the source active today (a source's own submission).
    """
    blob_ids = [item.blob_id for item in items]
    try:
        with session.begin_nested():
            _insert_items(session, source, items, source_activity)
    except BaseException:
        delete_blobs(store, blob_ids)
        raise
    _delete_blobs_unless_committed(session, store, blob_ids)


def _insert_items(
    session: Session, source: Source, items: Sequence[NewItem], source_activity: bool
) -> None:
    first = source.next_seq
    source.next_seq = first + len(items)
    day = today()
    if source_activity:
        source.last_active_on = day
    rows = [_item_row(source, first + offset, item, day) for offset, item in enumerate(items)]
    from_source = [row.seq for row in rows if row.kind in _SOURCE_KINDS]
    if from_source:
        # What read markers are compared with (models.Source.last_source_seq).
        source.last_source_seq = max(from_source)
    session.add_all(rows)
    session.flush()
    for row, item in zip(rows, items, strict=True):
        session.add_all(
            Wrap(item_id=row.id, key_id=key_id, algorithm=WRAP_ALGORITHM, wrap=wrap)
            for key_id, wrap in item.wraps.items()
        )
    session.flush()


def _item_row(source: Source, seq: int, item: NewItem, day: Any) -> Item:
    return Item(
        public_id=item.public_id,
        source_id=source.id,
        seq=seq,
        kind=int(item.kind),
        version=envelope.VERSION,
        blob_id=item.blob_id,
        blob_size=item.blob_size,
        sealed_meta=item.sealed_meta,
        signer_key_id=item.signer_key_id,
        signature=item.signature,
        author_journalist_id=item.author_journalist_id,
        created_on=day,
    )


def delete_blobs(store: BlobStore, blob_ids: Sequence[str]) -> None:
    """Delete ``blob_ids`` from ``store``, ignoring ones already gone."""
    for blob_id in blob_ids:
        # Cleaning up after a failure must not hide the failure itself.
        with suppress(OSError):
            store.delete(blob_id)


# session.info keys: blob deletions waiting for their root transaction to end, by
# transaction, each marked with the outcome that triggers it.
_PENDING_BLOBS: Final = "tipbox.blobs_pending"
_LISTENING: Final = "tipbox.blobs_listening"
_ON_COMMIT: Final = "commit"
_ON_ROLLBACK: Final = "rollback"


def _delete_blobs_unless_committed(
    session: Session, store: BlobStore, blob_ids: Sequence[str]
) -> None:
    """Delete ``blob_ids`` when the session's current root transaction ends uncommitted.

    A commit that fails, a rollback or a close: the rows are gone, so the blobs go too.
    """
    _when_transaction_ends(session, _ON_ROLLBACK, store, blob_ids)


def delete_blobs_after_commit(session: Session, store: BlobStore, blob_ids: Sequence[str]) -> None:
    """Delete ``blob_ids`` once the session's current root transaction commits.

    For rows deleted in this transaction: a rollback forgets the blobs (the rows are back),
    and at the commit a blob that some row still names (a savepoint that deleted it was
    rolled back) is kept. Never deletes a blob whose row survives.
    """
    _when_transaction_ends(session, _ON_COMMIT, store, blob_ids)


def _when_transaction_ends(
    session: Session, outcome: str, store: BlobStore, blob_ids: Sequence[str]
) -> None:
    root = session.get_transaction()
    if root is None:  # pragma: no cover - callers always run in a transaction
        return
    if not session.info.get(_LISTENING):
        # Listeners cannot be removed while an event runs them: install them once.
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_transaction_end", _on_transaction_end)
        session.info[_LISTENING] = True
    pending = session.info.setdefault(_PENDING_BLOBS, {})
    pending.setdefault(root, []).append((outcome, store, list(blob_ids)))


def _on_commit(session: Session) -> None:
    # Savepoint releases fire after_commit too; only the root transaction's commit counts.
    if session.in_nested_transaction():
        return
    batches = session.info.get(_PENDING_BLOBS, {}).pop(session.get_transaction(), [])
    doomed = [(store, ids) for outcome, store, ids in batches if outcome == _ON_COMMIT]
    if not doomed:
        return
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    try:
        surviving = _named_blobs(engine, [blob_id for _, ids in doomed for blob_id in ids])
    except SQLAlchemyError:
        return  # cannot tell which rows survive: keep every blob (a sweep finds orphans)
    for store, ids in doomed:
        delete_blobs(store, [blob_id for blob_id in ids if blob_id not in surviving])


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Still pending here means the root transaction ended without a commit.
    for outcome, store, ids in session.info.get(_PENDING_BLOBS, {}).pop(transaction, []):
        if outcome == _ON_ROLLBACK:
            delete_blobs(store, ids)


def _named_blobs(engine: Engine, blob_ids: Sequence[str]) -> set[str]:
    """Which of ``blob_ids`` a committed item row still names (read on a fresh connection:
    the session cannot run SQL while its commit events run)."""
    with engine.connect() as conn:
        return set(conn.scalars(select(Item.blob_id).where(Item.blob_id.in_(blob_ids))))


def source_for_update(session: Session, source_public_id: bytes) -> Source | None:
    """The source row, locked until the transaction ends (its ``next_seq`` will change)."""
    source = session.scalars(
        select(Source)
        .where(Source.public_id == source_public_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    return source
