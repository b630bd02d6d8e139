"""What a journalist does to a source: read, download, reply, note, delete (issue #4).

Private side: the journalist's key pair is passed in by the journalist app (opened from
its split-key session); newsroom seeds are opened from the reader's grants on every call,
never cached (DESIGN 4.6). The source app may not import this module (.importlinter).

Reading. Every item is opened with a wrap to a newsroom key the reader holds a grant for.
Anything that does not open (no usable wrap, a meta or body that fails a check of
docs/envelope.md 8, a missing blob) is listed as *damaged*, never raised. Replies and notes
are signed: the signature is checked against the signer's verified directory entry, which
must also name the item's author, *before* the body is decrypted. An item that fails that
check is listed with ``verified=False`` and **no text**: anyone who can write to the
database can seal a forged "reply" to the public newsroom key, so showing its text next to
a warning would still put words in a journalist's mouth (DESIGN 2.7: "anything unverified
is flagged, never trusted"). The source app does the same (``tipbox.source_replies``).

Deleting. Wraps go first, then item rows (and the source row); blobs go only once the
transaction has committed, and only those no surviving row names (DESIGN 2.10: a blob is
never deleted while its row survives; a crash in between leaves ciphertext that nothing
can open, for a blob sweep). What lingers in the database's free pages and WAL is pushed
out by ``tipbox.db.scrub(engine)``; call it after the commit (it is slow on PostgreSQL:
``VACUUM``, so batch it, e.g. after a retention run). Backups, and copies of the blob a
file system keeps, are beyond it: docs/ says what a full "hard delete" takes.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Final

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from tipbox import directory, keyring
from tipbox.crypto import envelope
from tipbox.crypto.directory import Entry
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.kdf import blake2b_256
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.filenames import content_disposition, safe_filename
from tipbox.items import (
    NewItem,
    delete_blobs_after_commit,
    source_for_update,
    store_items,
)
from tipbox.models import DirectoryEntry, Grant, Item, Journalist, Source, Wrap, new_public_id
from tipbox.source_replies import MAX_REPLY_BLOB_BYTES
from tipbox.storage import BlobStore
from tipbox.triage import refresh_last_source_seq

__all__ = [
    "MAX_TEXT_BLOB_BYTES",
    "Download",
    "FileInfo",
    "ItemView",
    "NotFound",
    "add_note",
    "add_reply",
    "conversation",
    "delete_item",
    "delete_source",
    "open_download",
]

# Text items are read whole into memory; a larger blob is not read, only listed as damaged.
MAX_TEXT_BLOB_BYTES: Final = MAX_REPLY_BLOB_BYTES
_SIGNED_KINDS: Final = frozenset({Kind.REPLY, Kind.NOTE})


class NotFound(LookupError):  # noqa: N818 - a state the view turns into a 404
    """No such source or item."""


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """A file's name (made safe to show), media type and true size, from its meta."""

    name: str
    media_type: str
    size: int


@dataclass(frozen=True)
class ItemView:
    """One item of a conversation as a journalist sees it.

    ``author``: the journalist who wrote a reply or note (None for a source's items);
    authenticated only when ``verified`` is True. ``text``: for messages, replies and notes
    that opened (and, if signed, verified). ``file``: for files whose meta opened.
    ``verified``: None for messages and files; for replies and notes, whether the
    signature verified (False: the text is withheld). ``damaged``: the item did not open.
    """

    item_id: bytes
    seq: int
    kind: int
    created_on: date
    author: str | None
    text: str | None
    file: FileInfo | None
    verified: bool | None
    damaged: bool


@dataclass(frozen=True)
class _Row:
    """An item row with its author's username and public id (outer-joined), and the
    wraps of it to the reader's newsroom keys."""

    item: Item
    author: str | None
    author_public_id: bytes | None
    wraps: Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True)
class _Opened:
    """An item whose wrap and meta opened."""

    kind: Kind
    ad: bytes
    content_key: bytes = field(repr=False)
    meta: envelope.Meta


def _newsroom_keys(session: Session, identity: PublicKeys, reader: KeyPair) -> dict[bytes, KeyPair]:
    """The newsroom key pairs granted to ``reader``, opened now (never cached, DESIGN 4.6).

    A grant that does not open (or whose key's entry does not verify) is skipped: the
    items wrapped only to that key will show as damaged.
    """
    key_ids = session.scalars(
        select(Grant.key_id)
        .join(DirectoryEntry, DirectoryEntry.key_id == Grant.key_id)
        .where(
            Grant.grantee_key_id == reader.key_id,
            DirectoryEntry.role == int(Role.NEWSROOM),
        )
    ).all()
    keys: dict[bytes, KeyPair] = {}
    for key_id in key_ids:
        with suppress(Rejected):
            seed = keyring.granted_seed(session, identity, reader, Role.NEWSROOM, key_id)
            keys[key_id] = keypair_from_seed(Role.NEWSROOM, seed)
    return keys


def _source(session: Session, source_public_id: bytes) -> Source:
    source = session.scalars(
        select(Source).where(Source.public_id == source_public_id)
    ).one_or_none()
    if source is None:
        raise NotFound("no such source")
    return source


def _rows(
    session: Session, keys: Mapping[bytes, KeyPair], *criteria: ColumnElement[bool]
) -> list[_Row]:
    """Items matching ``criteria`` in ``seq`` order, with authors and the reader's wraps."""
    found = session.execute(
        select(Item, Journalist.username, Journalist.public_id)
        .outerjoin(Journalist, Journalist.id == Item.author_journalist_id)
        .where(*criteria)
        .order_by(Item.seq)
    ).all()
    wraps: dict[int, list[tuple[bytes, bytes]]] = {}
    if found and keys:
        # Joined on the same criteria rather than a list of item ids: a source with
        # thousands of items would otherwise bind thousands of parameters, which
        # PostgreSQL's generic plan for a prepared statement scans linearly.
        for item_id, key_id, wrap in session.execute(
            select(Wrap.item_id, Wrap.key_id, Wrap.wrap)
            .join(Item, Item.id == Wrap.item_id)
            .where(*criteria, Wrap.key_id.in_(list(keys)))
        ):
            wraps.setdefault(item_id, []).append((key_id, wrap))
    return [_Row(item, name, public_id, wraps.get(item.id, [])) for item, name, public_id in found]


def _unwrap(wraps: Sequence[tuple[bytes, bytes]], keys: Mapping[bytes, KeyPair]) -> bytes:
    """The content key from the first wrap that opens with one of ``keys``."""
    for key_id, wrap in wraps:
        keypair = keys.get(key_id)
        if keypair is not None:
            with suppress(Rejected):
                return envelope.unwrap_key(wrap, keypair.x25519_private, keypair.x25519_public)
    raise Rejected("wrap: none opens with the reader's newsroom keys")


def _open(row: _Row, source_public_id: bytes, keys: Mapping[bytes, KeyPair]) -> _Opened:
    """Unwrap the content key and open the meta; ``Rejected`` on any failure."""
    item = row.item
    if item.version != envelope.VERSION or item.kind not in set(Kind):
        raise Rejected("item.row: unsupported version or kind")
    kind = Kind(item.kind)
    ad = envelope.additional_data(kind, source_public_id, item.public_id)
    content_key = _unwrap(row.wraps, keys)
    return _Opened(kind, ad, content_key, envelope.open_meta(content_key, ad, item.sealed_meta))


def _check_blob_size(store: BlobStore, item: Item, meta: envelope.Meta) -> None:
    """The blob must have the size the authenticated meta implies (without reading it)."""
    expected = envelope.blob_length(meta.size)
    if item.blob_size != expected or store.size(item.blob_id) != expected:
        raise Rejected("body: blob size does not match the meta")


def _read_text_blob(store: BlobStore, item: Item) -> bytes:
    if item.blob_size > MAX_TEXT_BLOB_BYTES:
        raise Rejected("body: blob too large for a text item")
    with store.open(item.blob_id) as handle:
        return handle.read(MAX_TEXT_BLOB_BYTES + 1)


def _decrypt_text(opened: _Opened, blob: bytes) -> str:
    meta = opened.meta
    if meta.name or meta.media_type != envelope.TEXT_MEDIA_TYPE:
        raise Rejected("item: not a text item")
    reader = envelope.decrypt_body(opened.content_key, opened.ad, io.BytesIO(blob), meta.size)
    try:
        return b"".join(reader).decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("item: text is not valid UTF-8") from None


SignerLookup = Callable[[bytes], Entry | None]


def _signers(session: Session, identity: PublicKeys) -> SignerLookup:
    """A lookup of verified signer entries for one conversation: each entry is read and
    its directory signature checked once, however many replies and notes it signed."""
    found: dict[bytes, Entry | None] = {}

    def lookup(key_id: bytes) -> Entry | None:
        if key_id not in found:
            try:
                found[key_id] = directory.journalist_signer(session, identity, key_id)
            except Rejected:
                found[key_id] = None
        return found[key_id]

    return lookup


def _signature_verifies(signer_of: SignerLookup, row: _Row, opened: _Opened, blob: bytes) -> bool:
    """Whether a reply's or note's signature verifies against its author's verified entry.

    The same rules as the source side (``tipbox.source_replies``), plus: the entry must be
    the key of the journalist the row names as author.
    """
    item = row.item
    if item.signer_key_id is None or item.signature is None or row.author_public_id is None:
        return False
    signer = signer_of(item.signer_key_id)
    if signer is None:
        return False
    try:
        if signer.ed25519 is None or not hmac.compare_digest(
            signer.subject_id, row.author_public_id
        ):
            return False
        envelope.verify_item(
            signer.ed25519, opened.ad, item.sealed_meta, blake2b_256(blob), item.signature
        )
    except Rejected:
        return False
    return True


def _damaged(row: _Row) -> ItemView:
    item = row.item
    signed = item.kind in _SIGNED_KINDS
    author = row.author if signed else None
    verified = False if signed else None
    return ItemView(
        item.public_id, item.seq, item.kind, item.created_on, author, None, None, verified, True
    )


def _view(store: BlobStore, signer_of: SignerLookup, row: _Row, opened: _Opened) -> ItemView:
    """The view of an item whose wrap and meta opened; ``Rejected``/``OSError`` if damaged."""
    item = row.item
    base = ItemView(
        item.public_id, item.seq, item.kind, item.created_on, None, None, None, None, False
    )
    if opened.kind == Kind.FILE:
        _check_blob_size(store, item, opened.meta)
        meta = opened.meta
        return replace(base, file=FileInfo(safe_filename(meta.name), meta.media_type, meta.size))
    blob = _read_text_blob(store, item)
    if opened.kind not in _SIGNED_KINDS:
        return replace(base, text=_decrypt_text(opened, blob))
    if not _signature_verifies(signer_of, row, opened, blob):
        return replace(base, author=row.author, verified=False)
    return replace(base, author=row.author, verified=True, text=_decrypt_text(opened, blob))


def _item_view(
    store: BlobStore,
    signer_of: SignerLookup,
    keys: Mapping[bytes, KeyPair],
    source_public_id: bytes,
    row: _Row,
) -> ItemView:
    try:
        opened = _open(row, source_public_id, keys)
        return _view(store, signer_of, row, opened)
    except (Rejected, OSError):  # a missing or unreadable blob is damage too
        return _damaged(row)


def conversation(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    reader: KeyPair,
    source_public_id: bytes,
) -> list[ItemView]:
    """Every item of a source, in ``seq`` order, opened for the journalist ``reader``.

    Messages, replies and notes carry their text; files their name (safe to show), media
    type and size from the authenticated meta (the blob is not read, only its size
    checked). Replies and notes show text only when their signature verifies (see the
    module docstring). Raises ``NotFound`` for an unknown source; never for a damaged item.
    """
    source = _source(session, source_public_id)
    keys = _newsroom_keys(session, identity, reader)
    signer_of = _signers(session, identity)
    return [
        _item_view(store, signer_of, keys, source.public_id, row)
        for row in _rows(session, keys, Item.source_id == source.id)
    ]


@dataclass(frozen=True)
class Download:
    """A file ready to stream: a safe ``filename``, its ``media_type`` and true ``size``.

    ``chunks()`` decrypts the blob as it reads it, in constant memory, and raises
    ``Rejected`` on any failed check (docs/envelope.md 8.2) — possibly after some chunks
    were yielded. The view must then abort the connection, so that a damaged file never
    looks complete; ``size`` is the true size, for ``Content-Length``.
    """

    filename: str
    media_type: str
    size: int
    _store: BlobStore = field(repr=False)
    _blob_id: str = field(repr=False)
    _ad: bytes = field(repr=False)
    _content_key: bytes = field(repr=False)

    @property
    def content_disposition(self) -> str:
        """The ``Content-Disposition`` header value (an attachment, RFC 6266)."""
        return content_disposition(self.filename)

    def chunks(self) -> Iterator[bytes]:
        """The file's content in pieces of at most 64 KiB; ``Rejected`` on any failure."""
        try:
            handle = self._store.open(self._blob_id)
        except OSError:
            raise Rejected("body: blob missing or unreadable") from None
        with handle:
            try:
                yield from envelope.decrypt_body(self._content_key, self._ad, handle, self.size)
            except OSError:
                raise Rejected("body: blob unreadable") from None


def open_download(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    reader: KeyPair,
    item_public_id: bytes,
) -> Download:
    """Prepare the download of file ``item_public_id`` for the journalist ``reader``.

    The wrap and meta are opened and the blob's size checked now (``Rejected`` if any
    fails); the body is decrypted only as ``Download.chunks()`` is read. ``NotFound`` if
    there is no such file item.
    """
    found = session.execute(
        select(Item, Source.public_id)
        .join(Source, Source.id == Item.source_id)
        .where(Item.public_id == item_public_id, Item.kind == int(Kind.FILE))
    ).one_or_none()
    if found is None:
        raise NotFound("no such file")
    item, source_public_id = found
    keys = _newsroom_keys(session, identity, reader)
    (row,) = _rows(session, keys, Item.id == item.id)
    opened = _open(row, source_public_id, keys)
    try:
        _check_blob_size(store, item, opened.meta)
    except OSError:
        raise Rejected("body: blob missing or unreadable") from None
    meta = opened.meta
    return Download(
        safe_filename(meta.name),
        meta.media_type,
        meta.size,
        store,
        item.blob_id,
        opened.ad,
        opened.content_key,
    )


# --- writing ---------------------------------------------------------------------------


def _check_author(
    session: Session, identity: PublicKeys, author: Journalist, keypair: KeyPair, label: str
) -> None:
    """The key that signs must be the author's, as its verified directory entry says, so
    that readers can verify the item."""
    if author.key_id is None or keypair.key_id != author.key_id or not author.is_active:
        raise Rejected(f"{label}.author: the key pair is not this journalist's current key")
    entry = directory.entry(session, identity, author.key_id)
    if entry.role != Role.JOURNALIST or entry.public != keypair.public:
        raise Rejected(f"{label}.author: the directory disagrees with the key pair")


def _recipients(
    session: Session, identity: PublicKeys, kind: Kind, source: Source
) -> dict[bytes, bytes]:
    """Key id -> X25519 key: the current newsroom key (verified), and for a reply the
    source's key (envelope.md 8.4)."""
    newsroom = directory.current_newsroom_key(session, identity)
    recipients = {newsroom.key_id: newsroom.x25519}
    if kind == Kind.REPLY:
        # Sources have no directory entry: their key is the one their codename derived,
        # which login checks against this stored public key (envelope.md 6).
        source_key = PublicKeys(Role.SOURCE, source.x25519)
        recipients[source_key.key_id] = source_key.x25519
    return recipients


def _add_signed(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    author: Journalist,
    author_keypair: KeyPair,
    source_public_id: bytes,
    text: str,
    kind: Kind,
) -> bytes:
    """Seal, sign and store a reply or note; return its item public id."""
    label = "reply" if kind == Kind.REPLY else "note"
    if not text.strip():
        raise ValueError(f"a {label} needs some text")
    _check_author(session, identity, author, author_keypair, label)
    # Locked and re-read: the item takes the source's next seq.
    source = source_for_update(session, source_public_id)
    if source is None:
        raise ValueError("no such source")
    sealed = envelope.seal_text(
        kind,
        source.public_id,
        new_public_id(),
        text,
        _recipients(session, identity, kind, source),
        signing_key=author_keypair.signing_key,
    )
    blob_id = store.new_id()
    with store.writer(blob_id) as out:
        out.write(sealed.blob)
    item = NewItem(
        public_id=sealed.item_id,
        kind=kind,
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
    return _add_signed(
        session, store, identity, author, author_keypair, source_public_id, text, Kind.REPLY
    )


def add_note(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    author: Journalist,
    author_keypair: KeyPair,
    source_public_id: bytes,
    text: str,
) -> bytes:
    """Add an internal note to a source's conversation; return the note's item public id.

    Like ``add_reply``, but of kind NOTE and wrapped only to the current newsroom key: the
    source never receives a wrap of it. Signed by the author.
    """
    return _add_signed(
        session, store, identity, author, author_keypair, source_public_id, text, Kind.NOTE
    )


# --- deleting --------------------------------------------------------------------------

# session.info keys: blobs to delete once their root transaction commits, by transaction.


def _delete_items(
    session: Session, store: BlobStore, item_ids: Sequence[int], blob_ids: Sequence[str]
) -> None:
    """Delete the wraps, then the rows of ``item_ids``; their blobs after the commit."""
    session.execute(delete(Wrap).where(Wrap.item_id.in_(item_ids)))
    session.execute(delete(Item).where(Item.id.in_(item_ids)))
    delete_blobs_after_commit(session, store, blob_ids)


def delete_item(session: Session, store: BlobStore, item_public_id: bytes) -> bool:
    """Delete one item: its wraps, its row, and (once committed) its blob.

    Returns whether there was such an item. The blob is deleted only when the caller's
    transaction commits; a rollback leaves everything as it was. Afterwards run
    ``tipbox.db.scrub(engine)`` (see the module docstring).
    """
    found = session.execute(
        select(Item.id, Item.blob_id, Item.source_id).where(Item.public_id == item_public_id)
    ).one_or_none()
    if found is None:
        return False
    item_id, blob_id, source_id = found
    _delete_items(session, store, [item_id], [blob_id])
    refresh_last_source_seq(session, source_id)
    return True


def delete_source(session: Session, store: BlobStore, source_public_id: bytes) -> bool:
    """Delete a source and everything of it: wraps, items, the source row, then blobs.

    Returns whether there was such a source. The source row is locked first, so no
    submission or reply can add an item mid-way. Blobs are deleted only when the caller's
    transaction commits. Afterwards run ``tipbox.db.scrub(engine)`` (module docstring).
    """
    source = source_for_update(session, source_public_id)
    if source is None:
        return False
    found = session.execute(select(Item.id, Item.blob_id).where(Item.source_id == source.id)).all()
    _delete_items(session, store, [row.id for row in found], [row.blob_id for row in found])
    session.delete(source)
    session.flush()
    return True
