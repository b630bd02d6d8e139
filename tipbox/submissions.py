"""Accept a source's submission: blobs, meta, wraps and rows, all or nothing (DESIGN 2.10).

Two paths (docs/source-app.md section 4):

- **Server path**: the request class streams each file part through an
  ``EncryptingUpload`` (plaintext is encrypted as it arrives, straight into a blob store
  temporary file); ``accept_server_submission`` seals the message in memory, wraps every
  content key to the current newsroom key and stores the rows.
- **Browser path**: the browser made every envelope; each body arrives as a
  ``CiphertextUpload`` and ``accept_browser_submission`` checks what a server without keys
  can check (section 4.3) before storing the rows.

Both write blobs first (each appears whole under its id, or not at all), then add the items
and wraps in the caller's transaction. If anything fails, every blob of the submission is
deleted; if the caller's transaction ends without a commit, the blobs are deleted then
too. An ``EncryptingUpload`` or ``CiphertextUpload`` that never reaches a successful accept
is removed by ``abort`` (the request class calls it at teardown).

This module is on the public side: it seals only to verified public keys and never imports
a private-key module.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from tipbox import directory
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.envelope import BodyEncryptor, BodyInfo, Kind, Meta
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.models import (
    KIND_FILE,
    KIND_MESSAGE,
    WRAP_ALGORITHM,
    Item,
    NewsroomKey,
    Source,
    Wrap,
    new_public_id,
    today,
)
from tipbox.storage import BlobStore

__all__ = [
    "FALLBACK_MEDIA_TYPE",
    "MAX_DECLARED_TYPE_CHARS",
    "CiphertextUpload",
    "EncryptingUpload",
    "Limits",
    "NewItem",
    "Receipt",
    "SubmissionRejected",
    "accept_browser_submission",
    "accept_server_submission",
    "max_blob_bytes",
    "sent_count",
    "store_items",
]

FALLBACK_MEDIA_TYPE: Final = "application/octet-stream"
# A declared media type longer than this is not a real one; it would also eat into the
# room the meta record leaves for the file name.
MAX_DECLARED_TYPE_CHARS: Final = 127
# UTF-8 takes at most 4 bytes per character: the largest message body, in bytes.
BYTES_PER_CHAR: Final = 4
MANIFEST_VERSION: Final = 1
# A manifest item is about 1.6 KB of JSON; anything much longer is not a manifest.
_MANIFEST_ITEM_CHARS: Final = 2048
_MANIFEST_FIELDS: Final = frozenset({"version", "source_id", "items"})
_ITEM_FIELDS: Final = frozenset({"item_id", "kind", "key_id", "sealed_meta", "wrap", "part"})
_HEX_ID = re.compile(r"[0-9a-f]{32}")


class SubmissionRejected(Exception):  # noqa: N818 - a refusal the source sees, not a bug
    """A submission refused with nothing stored.

    ``status`` is the HTTP status the source app answers with (400, or 413 for a file over
    the size limit); ``reason`` is a stable key the app maps to a page in the source's
    language: ``empty``, ``message_too_long``, ``too_many_files``, ``file_too_large``,
    ``unknown_source``, ``bad_manifest``, ``wrong_source``, ``not_issued``, ``bad_kind``,
    ``stale_key``, ``bad_envelope``, ``bad_parts``, ``bad_blob``; the request class adds
    ``unexpected_part`` and ``no_session``. The message never contains user content.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        """Refuse for ``reason`` with HTTP ``status`` (400 or 413)."""
        super().__init__(f"submission rejected: {reason}")
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Submission limits (docs/source-app.md section 5).

    ``key_grace_seconds``: how long after a newsroom key turned *retiring* a browser-made
    envelope sealed to it is still accepted. A form cannot outlive the source's session
    (its item ids live there), so the session's absolute lifetime is enough.
    """

    max_message_chars: int
    max_files: int
    max_file_bytes: int
    key_grace_seconds: int = 6 * 3600

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        """The limits ``config`` sets."""
        return cls(
            max_message_chars=config.max_message_chars,
            max_files=config.max_files,
            max_file_bytes=config.max_file_bytes,
            key_grace_seconds=config.source_session_absolute_seconds,
        )

    @property
    def max_message_bytes(self) -> int:
        """The largest message body, in bytes."""
        return BYTES_PER_CHAR * self.max_message_chars


def max_blob_bytes(limits: Limits) -> int:
    """The largest blob a browser may post for one item (a file or a message)."""
    return envelope.blob_length(max(limits.max_file_bytes, limits.max_message_bytes))


@dataclass(frozen=True)
class Receipt:
    """What a stored submission gave: its item ids (in order), and how many of each kind."""

    item_ids: tuple[bytes, ...]
    messages: int
    files: int


# --- uploads ---------------------------------------------------------------------------


class UploadAbortedError(Exception):
    """Thrown into a blob store writer to make it remove its temporary file."""


class _BlobUpload:
    """A blob being written to the store while a request part streams in.

    ``write`` refuses (413) as soon as more than ``max_bytes`` arrive, after removing the
    temporary file, so a huge upload stops early. ``finish`` makes the blob appear under
    ``blob_id``; ``abort`` removes what there is (temporary file or finished blob) unless a
    successful accept has claimed the blob. ``close`` is ``abort``: Werkzeug closes file
    parts at the end of a request.
    """

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._received = 0
        self._state = "open"
        self.blob_id = store.new_id()
        self._writer: AbstractContextManager[BinaryIO] = store.writer(self.blob_id)
        self._file = self._writer.__enter__()

    @property
    def finished(self) -> bool:
        """Whether the blob is complete and stored (and not aborted since)."""
        return self._state in ("finished", "claimed")

    @property
    def claimed(self) -> bool:
        """Whether a successful accept took over the blob (``abort`` then does nothing)."""
        return self._state == "claimed"

    def write(self, data: bytes) -> int:
        """Take the next piece of the part; return how many bytes were taken."""
        if self._state != "open":
            raise ValueError("upload is not open")
        if self._received + len(data) > self._max_bytes:
            self.abort()
            raise SubmissionRejected("file_too_large", 413)
        try:
            self._consume(data)
        except BaseException:
            self.abort()
            raise
        self._received += len(data)
        return len(data)

    def finish(self) -> None:
        """The part ended: complete the blob and make it appear under ``blob_id``."""
        if self._state != "open":
            raise ValueError("upload is not open")
        try:
            self._complete()
        except BaseException:
            self.abort()
            raise
        self._state = "aborted"  # whatever happens next, this upload is done
        try:
            self._writer.__exit__(None, None, None)
        except FileExistsError:
            raise  # another blob has this id: it is not ours to delete
        except BaseException:
            # The writer removed its temporary file; a failure after the rename (flushing
            # the directory) can leave the blob in place.
            _delete_blobs(self._store, [self.blob_id])
            raise
        self._state = "finished"

    def abort(self) -> None:
        """Leave nothing behind: remove the temporary file or the stored blob."""
        if self._state == "open":
            self._state = "aborted"
            # Thrown into the writer, the exception makes it remove its temporary file.
            with suppress(UploadAbortedError, OSError):
                self._writer.__exit__(UploadAbortedError, UploadAbortedError(), None)
        elif self._state == "finished":
            self._state = "aborted"
            _delete_blobs(self._store, [self.blob_id])

    def close(self) -> None:
        """Werkzeug's ``FileStorage.close``: discard unless claimed."""
        self.abort()

    def _claim(self) -> None:
        if self._state != "finished":
            raise ValueError("only a finished upload can be claimed")
        self._state = "claimed"

    def _consume(self, data: bytes) -> None:
        raise NotImplementedError

    def _complete(self) -> None:
        """Write what remains of the blob; the writer is committed afterwards."""


class EncryptingUpload(_BlobUpload):
    """A file part of the server path, encrypted as it streams in (never plaintext on disk).

    A fresh item id and content key are made here; the body goes through
    ``envelope.BodyEncryptor`` into the blob store writer, so memory stays constant and only
    ciphertext reaches the disk. ``max_bytes`` bounds the plaintext. After ``finish``:
    ``info`` (sizes) and ``sealed_meta`` (name, media type and true size) are set.
    """

    def __init__(
        self,
        store: BlobStore,
        source_id: bytes,
        filename: str,
        media_type: str,
        max_bytes: int,
    ) -> None:
        """Start the blob of a new file item of ``source_id``."""
        self.source_id = source_id
        self.item_id = new_public_id()
        self.content_key = envelope.new_content_key()
        self._ad = envelope.additional_data(Kind.FILE, source_id, self.item_id)
        self._name = _meta_name(filename)
        self._media_type = _meta_media_type(media_type)
        self.info: BodyInfo | None = None
        self.sealed_meta: bytes | None = None
        super().__init__(store, max_bytes)
        try:
            self._encryptor = BodyEncryptor(self.content_key, self._ad, self._file)
        except BaseException:
            self.abort()
            raise

    def __repr__(self) -> str:
        return f"<EncryptingUpload blob={self.blob_id} state={self._state}>"

    def _consume(self, data: bytes) -> None:
        self._encryptor.write(data)

    def _complete(self) -> None:
        info = self._encryptor.finish()
        meta = Meta(self._name, self._media_type, info.plain_length)
        self.sealed_meta = envelope.seal_meta(self.content_key, self._ad, meta)
        self.info = info


class CiphertextUpload(_BlobUpload):
    """A ``blob<N>`` part of the browser path: a body the browser encrypted, stored as is.

    ``size`` is the number of bytes received (the blob's size once finished).
    """

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        """Start a blob of at most ``max_bytes`` bytes."""
        super().__init__(store, max_bytes)

    def __repr__(self) -> str:
        return f"<CiphertextUpload blob={self.blob_id} state={self._state}>"

    @property
    def size(self) -> int:
        """Bytes received so far."""
        return self._received

    def _consume(self, data: bytes) -> None:
        self._file.write(data)


def _meta_name(filename: str) -> str:
    # Only what the meta record needs: valid Unicode (seal_meta shortens it to fit).
    # Stripping control and bidi characters is the reader's job (DESIGN 2.8).
    return filename.encode("utf-8", "replace").decode("utf-8")


def _meta_media_type(declared: str) -> str:
    if 0 < len(declared) <= MAX_DECLARED_TYPE_CHARS and all(" " <= c <= "~" for c in declared):
        return declared
    return FALLBACK_MEDIA_TYPE


# --- storing items -----------------------------------------------------------------------


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
        _delete_blobs(store, blob_ids)
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


def _delete_blobs(store: BlobStore, blob_ids: Sequence[str]) -> None:
    for blob_id in blob_ids:
        # Cleaning up after a failure must not hide the failure itself.
        with suppress(OSError):
            store.delete(blob_id)


# session.info keys: blobs to delete unless their root transaction commits, by transaction.
_PENDING_BLOBS: Final = "tipbox.blobs_pending_commit"
_LISTENING: Final = "tipbox.blobs_listening"


def _delete_blobs_unless_committed(
    session: Session, store: BlobStore, blob_ids: Sequence[str]
) -> None:
    """Delete ``blob_ids`` when the session's current root transaction ends uncommitted.

    A commit that fails, a rollback or a close: the rows are gone, so the blobs go too.
    """
    root = session.get_transaction()
    if root is None:  # pragma: no cover - store_items always runs in a transaction
        return
    if not session.info.get(_LISTENING):
        # Listeners cannot be removed while an event runs them: install them once.
        event.listen(session, "after_commit", _forget_committed_blobs)
        event.listen(session, "after_transaction_end", _delete_uncommitted_blobs)
        session.info[_LISTENING] = True
    pending = session.info.setdefault(_PENDING_BLOBS, {})
    pending.setdefault(root, []).append((store, list(blob_ids)))


def _forget_committed_blobs(session: Session) -> None:
    # Savepoint releases fire after_commit too; only the root transaction's commit counts.
    if not session.in_nested_transaction():
        session.info.get(_PENDING_BLOBS, {}).pop(session.get_transaction(), None)


def _delete_uncommitted_blobs(session: Session, transaction: SessionTransaction) -> None:
    for store, blob_ids in session.info.get(_PENDING_BLOBS, {}).pop(transaction, []):
        _delete_blobs(store, blob_ids)


def _source_for_update(session: Session, source_public_id: bytes) -> Source:
    """The source row, locked until the transaction ends (its ``next_seq`` will change)."""
    source = session.scalars(
        select(Source)
        .where(Source.public_id == source_public_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if source is None:
        raise SubmissionRejected("unknown_source")
    return source


def _claim_all(uploads: Sequence[_BlobUpload]) -> None:
    for upload in uploads:
        upload._claim()


def _abort_all(uploads: Sequence[_BlobUpload]) -> None:
    for upload in uploads:
        upload.abort()


# --- server path -------------------------------------------------------------------------


def accept_server_submission(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    source_public_id: bytes,
    message: str,
    files: Sequence[EncryptingUpload],
    limits: Limits,
) -> Receipt:
    """Store a server-path submission: ``message`` (sealed here) and finished ``files``.

    Every content key is wrapped to the current newsroom key, after its directory entry
    verifies. Refusals (``SubmissionRejected``) and every other failure leave nothing
    stored: the uploads are aborted and the message blob deleted. A message of only
    whitespace counts as no message.
    """
    uploads = list(files)
    written: list[str] = []
    try:
        has_message = _check_server_submission(source_public_id, message, uploads, limits)
        source = _source_for_update(session, source_public_id)
        newsroom = directory.current_newsroom_key(session, identity)
        items = [_file_item(upload, newsroom) for upload in uploads]
        if has_message:
            items.insert(0, _message_item(store, source_public_id, message, newsroom, written))
        store_items(session, store, source, items, source_activity=True)
    except BaseException:
        _abort_all(uploads)
        _delete_blobs(store, written)
        raise
    _claim_all(uploads)
    return Receipt(tuple(item.public_id for item in items), int(has_message), len(uploads))


def _check_server_submission(
    source_public_id: bytes, message: str, uploads: Sequence[EncryptingUpload], limits: Limits
) -> bool:
    """Apply the limits; return whether there is a message to store."""
    if len(message) > limits.max_message_chars:
        raise SubmissionRejected("message_too_long")
    if len(uploads) > limits.max_files:
        raise SubmissionRejected("too_many_files")
    has_message = bool(message.strip())
    if not has_message and not uploads:
        raise SubmissionRejected("empty")
    for upload in uploads:
        if not upload.finished or upload.claimed or upload.info is None:
            raise ValueError("an upload handed to accept must be finished and unclaimed")
        if upload.source_id != source_public_id:
            raise ValueError("an upload belongs to another source")
        if upload.info.plain_length > limits.max_file_bytes:
            raise SubmissionRejected("file_too_large", 413)
    return has_message


def _file_item(upload: EncryptingUpload, newsroom: Entry) -> NewItem:
    assert upload.info is not None  # finished
    assert upload.sealed_meta is not None
    return NewItem(
        public_id=upload.item_id,
        kind=Kind.FILE,
        blob_id=upload.blob_id,
        blob_size=upload.info.blob_length,
        sealed_meta=upload.sealed_meta,
        wraps={newsroom.key_id: envelope.wrap_key(upload.content_key, newsroom.x25519)},
    )


def _message_item(
    store: BlobStore, source_id: bytes, message: str, newsroom: Entry, written: list[str]
) -> NewItem:
    """Seal the message in memory and write its blob (its id goes into ``written``)."""
    sealed = envelope.seal_text(
        Kind.MESSAGE, source_id, new_public_id(), message, {newsroom.key_id: newsroom.x25519}
    )
    blob_id = store.new_id()
    with store.writer(blob_id) as out:
        out.write(sealed.blob)
    written.append(blob_id)
    return NewItem(
        public_id=sealed.item_id,
        kind=Kind.MESSAGE,
        blob_id=blob_id,
        blob_size=len(sealed.blob),
        sealed_meta=sealed.sealed_meta,
        wraps=sealed.wraps,
    )


# --- browser path ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ManifestItem:
    item_id: bytes
    kind: int
    key_id: bytes
    sealed_meta: bytes
    wrap: bytes
    part: str


def accept_browser_submission(
    session: Session,
    store: BlobStore,
    identity: PublicKeys,
    source_public_id: bytes,
    manifest_text: str,
    parts: Mapping[str, CiphertextUpload],
    issued: Sequence[bytes],
    limits: Limits,
) -> Receipt:
    """Store a browser-made submission after the checks of docs/source-app.md 4.3.

    ``parts`` maps each received ``blob<N>`` part name to its finished upload; ``issued``
    holds the item ids the session issued. Any failed check refuses (400) with nothing
    stored. On success the receipt lists the item ids used: the caller removes them from
    the session's issued ids.
    """
    uploads = list(parts.values())
    try:
        entries = _checked_manifest(session, source_public_id, manifest_text, issued)
        _check_kinds(entries, limits)
        _check_keys(session, identity, entries, limits)
        _check_envelopes(entries)
        _check_parts(entries, parts)
        _check_bodies(entries, parts, limits)
        source = _source_for_update(session, source_public_id)
        items = [_browser_item(entry, parts[entry.part]) for entry in entries]
        store_items(session, store, source, items, source_activity=True)
    except BaseException:
        _abort_all(uploads)
        raise
    _claim_all(uploads)
    messages = sum(entry.kind == KIND_MESSAGE for entry in entries)
    return Receipt(tuple(e.item_id for e in entries), messages, len(entries) - messages)


def _checked_manifest(
    session: Session, source_public_id: bytes, manifest_text: str, issued: Sequence[bytes]
) -> list[_ManifestItem]:
    """Checks 1 (shape), 2 (source) and 3 (issued, unused, distinct ids)."""
    source_id, entries = _parse_manifest(manifest_text)
    if source_id != source_public_id:
        raise SubmissionRejected("wrong_source")
    ids = [entry.item_id for entry in entries]
    if len(set(ids)) != len(ids) or not set(ids) <= set(issued):
        raise SubmissionRejected("not_issued")
    if ids and session.scalar(select(func.count()).where(Item.public_id.in_(ids))):
        raise SubmissionRejected("not_issued")
    return entries


def _reject_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError("duplicate name")
        result[name] = value
    return result


def _reject_constant(name: str) -> None:
    raise ValueError("not JSON")  # NaN, Infinity


def _parse_manifest(text: str) -> tuple[bytes, list[_ManifestItem]]:
    """Check 1: ``text`` is exactly the manifest's JSON shape, version 1."""
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicate_names, parse_constant=_reject_constant
        )
        if not isinstance(data, dict) or set(data) != _MANIFEST_FIELDS:
            raise ValueError("fields")
        version, items = data["version"], data["items"]
        # bool is an int in Python: JSON `true` must not pass for version 1.
        if type(version) is not int or version != MANIFEST_VERSION or not isinstance(items, list):
            raise ValueError("version")
        if len(text) > _MANIFEST_ITEM_CHARS * (len(items) + 1):
            raise ValueError("length")
        return _hex_id(data["source_id"]), [_manifest_item(item) for item in items]
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise SubmissionRejected("bad_manifest") from None


def _manifest_item(item: object) -> _ManifestItem:
    if not isinstance(item, dict) or set(item) != _ITEM_FIELDS:
        raise ValueError("item fields")
    kind, part = item["kind"], item["part"]
    if type(kind) is not int or not isinstance(part, str):
        raise ValueError("item types")
    return _ManifestItem(
        item_id=_hex_id(item["item_id"]),
        kind=kind,
        key_id=_hex_id(item["key_id"]),
        sealed_meta=_base64(item["sealed_meta"]),
        wrap=_base64(item["wrap"]),
        part=part,
    )


def _hex_id(value: object) -> bytes:
    if not isinstance(value, str) or _HEX_ID.fullmatch(value) is None:
        raise ValueError("id")
    return bytes.fromhex(value)


def _base64(value: object) -> bytes:
    """Standard, padded, canonical base64."""
    if not isinstance(value, str) or not value.isascii():
        raise ValueError("base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("base64")
    return raw


def _check_kinds(entries: Sequence[_ManifestItem], limits: Limits) -> None:
    """Check 4: kinds 1 or 2, at most one message, at most ``max_files``, at least one."""
    if any(entry.kind not in (KIND_MESSAGE, KIND_FILE) for entry in entries):
        raise SubmissionRejected("bad_kind")
    messages = sum(entry.kind == KIND_MESSAGE for entry in entries)
    if messages > 1:
        raise SubmissionRejected("bad_kind")
    if len(entries) - messages > limits.max_files:
        raise SubmissionRejected("too_many_files")
    if not entries:
        raise SubmissionRejected("empty")


def _check_keys(
    session: Session, identity: PublicKeys, entries: Sequence[_ManifestItem], limits: Limits
) -> None:
    """Check 5: every wrap is for the current newsroom key, or a retiring one in its grace."""
    for key_id in {entry.key_id for entry in entries}:
        try:
            entry = directory.entry(session, identity, key_id)
        except Rejected:
            raise SubmissionRejected("stale_key") from None
        if entry.role != Role.NEWSROOM or not _accepts_commits(session, entry, limits):
            raise SubmissionRejected("stale_key")


def _accepts_commits(session: Session, entry: Entry, limits: Limits) -> bool:
    if entry.status == Status.CURRENT:
        return True
    if entry.status != Status.RETIRING:
        return False
    row = session.get(NewsroomKey, entry.key_id)
    if row is None or row.retiring_since is None:
        return False
    grace = timedelta(seconds=limits.key_grace_seconds)
    return datetime.now(UTC) <= row.retiring_since + grace


def _check_envelopes(entries: Sequence[_ManifestItem]) -> None:
    """Check 6: each wrap is 80 bytes and each sealed meta 1064."""
    for entry in entries:
        if len(entry.wrap) != envelope.WRAP_BYTES:
            raise SubmissionRejected("bad_envelope")
        if len(entry.sealed_meta) != envelope.SEALED_META_BYTES:
            raise SubmissionRejected("bad_envelope")


def _check_parts(entries: Sequence[_ManifestItem], parts: Mapping[str, CiphertextUpload]) -> None:
    """Check 7: each item names exactly one received part, and every part is named."""
    named = [entry.part for entry in entries]
    if len(set(named)) != len(named) or set(named) != set(parts):
        raise SubmissionRejected("bad_parts")
    if not all(upload.finished and not upload.claimed for upload in parts.values()):
        raise SubmissionRejected("bad_parts")


def _check_bodies(
    entries: Sequence[_ManifestItem], parts: Mapping[str, CiphertextUpload], limits: Limits
) -> None:
    """Check 8: each body's size is a valid bucket within the item's limit."""
    for entry in entries:
        limit = limits.max_message_bytes if entry.kind == KIND_MESSAGE else limits.max_file_bytes
        try:
            padded = envelope.padded_length_of_blob(parts[entry.part].size)
        except Rejected:
            raise SubmissionRejected("bad_blob") from None
        if padded > envelope.padded_length(limit):
            raise SubmissionRejected("bad_blob")


def _browser_item(entry: _ManifestItem, upload: CiphertextUpload) -> NewItem:
    return NewItem(
        public_id=entry.item_id,
        kind=Kind(entry.kind),
        blob_id=upload.blob_id,
        blob_size=upload.size,
        sealed_meta=entry.sealed_meta,
        wraps={entry.key_id: entry.wrap},
    )


# --- counts ------------------------------------------------------------------------------


def sent_count(session: Session, source_public_id: bytes) -> int:
    """How many messages and files the source has sent (and the newsroom still holds)."""
    count = session.scalar(
        select(func.count())
        .select_from(Item)
        .join(Source, Item.source_id == Source.id)
        .where(Source.public_id == source_public_id, Item.kind.in_((KIND_MESSAGE, KIND_FILE)))
    )
    return int(count or 0)
