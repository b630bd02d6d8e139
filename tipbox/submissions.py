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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tipbox import directory
from tipbox.crypto import envelope
from tipbox.crypto.directory import Entry, Status
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, Role
from tipbox.items import NewItem, delete_blobs, source_for_update, store_items
from tipbox.models import (
    KIND_FILE,
    KIND_MESSAGE,
    DirectoryEntry,
    Item,
    NewsroomKey,
    Source,
    new_public_id,
)
from tipbox.storage import BlobStore
from tipbox.submission_rules import Limits, SubmissionRejected, max_blob_bytes
from tipbox.uploads import (
    FALLBACK_MEDIA_TYPE,
    MAX_DECLARED_TYPE_CHARS,
    CiphertextUpload,
    EncryptingUpload,
    abort_all,
    claim_all,
)

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

MANIFEST_VERSION: Final = 1
# A manifest item is about 1.6 KB of JSON; anything much longer is not a manifest.
_MANIFEST_ITEM_CHARS: Final = 2048
_MANIFEST_FIELDS: Final = frozenset({"version", "source_id", "items"})
_ITEM_FIELDS: Final = frozenset({"item_id", "kind", "key_id", "sealed_meta", "wrap", "part"})
_HEX_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Receipt:
    """What a stored submission gave: its item ids (in order), and how many of each kind."""

    item_ids: tuple[bytes, ...]
    messages: int
    files: int


def _source_for_update(session: Session, source_public_id: bytes) -> Source:
    """The source row, locked until the transaction ends; refused if there is none."""
    source = source_for_update(session, source_public_id)
    if source is None:
        raise SubmissionRejected("unknown_source")
    return source


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
        current = directory.current_newsroom_key(session, identity)
        # Locked and read again: the key must still accept commits when this one lands.
        newsroom = newsroom_key_for_commit(session, identity, current.key_id, limits)
        if newsroom is None:
            raise SubmissionRejected("stale_key")
        items = [_file_item(upload, newsroom) for upload in uploads]
        if has_message:
            items.insert(0, _message_item(store, source_public_id, message, newsroom, written))
        store_items(session, store, source, items, source_activity=True)
    except BaseException:
        abort_all(uploads)
        delete_blobs(store, written)
        raise
    claim_all(uploads)
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
        abort_all(uploads)
        raise
    claim_all(uploads)
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
    # In a fixed order, so that two submissions never wait for each other's locks.
    for key_id in sorted({entry.key_id for entry in entries}):
        if newsroom_key_for_commit(session, identity, key_id, limits) is None:
            raise SubmissionRejected("stale_key")


def lock_newsroom_key(session: Session, key_id: bytes, *, exclusive: bool = False) -> None:
    """Hold newsroom key ``key_id``'s commit lock until the transaction ends.

    A submission holds it shared from the check that its key accepts commits to its
    commit; a rotation's final sweep and ``retire`` hold it exclusively, so that no commit
    to a retiring key lands after the sweep (docs/keys.md). On PostgreSQL it is a
    transaction advisory lock: unlike ``FOR SHARE`` on the key's row, it needs no UPDATE
    privilege for the source app's role. SQLite needs none: every write transaction begins
    with ``BEGIN IMMEDIATE`` (``tipbox.db``), so it runs alone from its first statement.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    lock = int.from_bytes(key_id[:8], "big", signed=True)  # the bigint the function takes
    take = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    session.execute(select(take(lock)))


def commits_accepted_until(key: NewsroomKey, grace_seconds: int) -> datetime | None:
    """When a retiring key's grace period ends (None: ``key`` is not retiring)."""
    if key.retiring_since is None:
        return None
    return key.retiring_since + timedelta(seconds=grace_seconds)


def newsroom_key_for_commit(
    session: Session, identity: PublicKeys, key_id: bytes, limits: Limits
) -> Entry | None:
    """The verified newsroom key ``key_id`` if a commit may wrap to it now, else None.

    It may when it is current, or retiring and within ``limits.key_grace_seconds``. The
    key's commit lock is taken first and the key read afresh after it, so the answer holds
    until this transaction ends.
    """
    lock_newsroom_key(session, key_id)
    row = session.get(DirectoryEntry, key_id, populate_existing=True)
    if row is None:
        return None
    try:
        entry = directory.verified(row, identity)
    except Rejected:
        return None
    if entry.role != Role.NEWSROOM:
        return None
    if entry.status == Status.CURRENT:
        return entry
    key = session.get(NewsroomKey, key_id, populate_existing=True)
    if entry.status != Status.RETIRING or key is None:
        return None
    until = commits_accepted_until(key, limits.key_grace_seconds)
    return entry if until is not None and datetime.now(UTC) <= until else None


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
