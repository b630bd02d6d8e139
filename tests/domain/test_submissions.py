"""Submissions: both paths store whole items or nothing (tipbox.submissions; DESIGN 2.10).

Every test runs on a real database (SQLite, and PostgreSQL when configured) and a real
blob store; items are opened the way the newsroom does, with the newsroom key taken from
the admin's grant.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tipbox import keyring, sources, submissions
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.directory import Status
from tipbox.crypto.envelope import Meta
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed, new_seed
from tipbox.models import Item, Journalist, NewsroomKey, Source, Wrap, new_public_id, today
from tipbox.storage import TEMP_PREFIX, FilesystemBlobStore
from tipbox.submissions import (
    CiphertextUpload,
    EncryptingUpload,
    Limits,
    SubmissionRejected,
)

from .opened import open_instance

LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=256 * 1024)
MIB = 1024 * 1024


@dataclass
class Newsroom:
    """An initialised instance, seen by a test that holds every key."""

    db: Session
    store: FilesystemBlobStore
    identity: PublicKeys
    identity_keys: KeyPair
    newsroom: KeyPair
    source_id: bytes
    limits: Limits = LIMITS

    def open_items(self, source_id: bytes | None = None) -> list[tuple[int, Meta, bytes]]:
        """Every message and file of the source, opened with the newsroom key."""
        source_id = source_id or self.source_id
        items = self.db.scalars(
            select(Item)
            .join(Source, Item.source_id == Source.id)
            .where(Source.public_id == source_id)
            .order_by(Item.seq)
        ).all()
        out = []
        for item in items:
            wrap = self.db.scalars(
                select(Wrap.wrap).where(
                    Wrap.item_id == item.id, Wrap.key_id == self.newsroom.key_id
                )
            ).one()
            key = envelope.unwrap_key(wrap, self.newsroom.x25519_private)
            ad = envelope.additional_data(item.kind, source_id, item.public_id)
            meta = envelope.open_meta(key, ad, item.sealed_meta)
            with self.store.open(item.blob_id) as blob:
                content = b"".join(envelope.decrypt_body(key, ad, blob, meta.size))
            out.append((item.kind, meta, content))
        return out

    def upload(self, name: str, content: bytes, media_type: str = "text/plain") -> EncryptingUpload:
        """A finished server-path upload of ``content``, written in uneven pieces."""
        upload = EncryptingUpload(
            self.store, self.source_id, name, media_type, self.limits.max_file_bytes
        )
        for piece in _pieces(content):
            assert upload.write(piece) == len(piece)
        upload.finish()
        return upload


def _pieces(content: bytes, size: int = 50_000) -> Iterator[bytes]:
    yield b""
    for start in range(0, len(content), size):
        yield content[start : start + size]


@pytest.fixture
def nr(db: Session, config: Config, blob_store: FilesystemBlobStore) -> Newsroom:
    """An instance with one source; the newsroom key opened from the admin's grant."""
    opened = open_instance(db, config)
    return Newsroom(
        db,
        blob_store,
        opened.identity,
        opened.identity_keys,
        opened.newsroom,
        opened.source.public_id,
    )


def _stored_nothing(nr: Newsroom) -> None:
    """No item, no wrap, no blob and no temporary file."""
    nr.db.rollback()
    assert nr.db.scalar(select(func.count()).select_from(Item)) == 0
    assert nr.db.scalar(select(func.count()).select_from(Wrap)) == 0
    assert _files(nr.store.root) == []


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- server path -------------------------------------------------------------------------


def test_server_submission_decrypts_to_exactly_the_input(nr: Newsroom) -> None:
    big = secrets.token_bytes(200_000)
    nr.db.execute(update(Source).values(last_active_on=today() - timedelta(days=30)))
    nr.db.commit()
    files = [
        nr.upload("отчёт 2024.pdf", big, "application/pdf"),
        nr.upload("empty.txt", b"", "text/plain"),
        nr.upload("odd type.bin", b"x" * 10, "text/plain\x00evil"),
        nr.upload("long type.bin", b"y", "a/" + "b" * 200),
    ]
    message = "Привет, newsroom!\r\nЖду ответа."  # noqa: RUF001 (Cyrillic on purpose)
    receipt = submissions.accept_server_submission(
        nr.db,
        nr.store,
        nr.identity,
        nr.source_id,
        message,
        files,
        replace(LIMITS, max_files=4),
    )
    nr.db.commit()
    assert (receipt.messages, receipt.files) == (1, 4)
    assert receipt.item_ids[1:] == tuple(upload.item_id for upload in files)
    opened = nr.open_items()
    assert [
        (kind, meta.name, meta.media_type, meta.size, content) for kind, meta, content in opened
    ] == [
        (1, "", envelope.TEXT_MEDIA_TYPE, len(message.encode()), message.encode()),
        (2, "отчёт 2024.pdf", "application/pdf", len(big), big),
        (2, "empty.txt", "text/plain", 0, b""),
        (2, "odd type.bin", submissions.FALLBACK_MEDIA_TYPE, 10, b"x" * 10),
        (2, "long type.bin", submissions.FALLBACK_MEDIA_TYPE, 1, b"y"),
    ]
    rows = nr.db.scalars(select(Item).order_by(Item.seq)).all()
    assert [row.seq for row in rows] == [1, 2, 3, 4, 5]
    assert [row.public_id for row in rows] == list(receipt.item_ids)
    assert all(row.created_on == today() and row.version == 1 for row in rows)
    assert all(row.blob_size == nr.store.size(row.blob_id) for row in rows)
    assert set(nr.db.scalars(select(Wrap.key_id))) == {nr.newsroom.key_id}
    source = nr.db.scalars(select(Source)).one()
    assert source.next_seq == 6
    assert source.last_active_on == today()
    assert submissions.sent_count(nr.db, nr.source_id) == 5
    assert all(upload.claimed for upload in files)
    # A claimed upload is the database's now: a late discard must not touch it.
    for upload in files:
        upload.abort()
    assert len(list(nr.store.ids())) == 5


def test_file_names_are_kept_as_given_but_made_to_fit(nr: Newsroom) -> None:
    hostile = "invoice\u202efdp.exe\x00\x1b[31m"  # bidi and control characters stay
    long = "ж" * 2000 + ".pdf"
    surrogate = "bad\udcffname.txt"
    files = [nr.upload(name, b"x") for name in (hostile, long, surrogate)]
    submissions.accept_server_submission(
        nr.db, nr.store, nr.identity, nr.source_id, "", files, LIMITS
    )
    nr.db.commit()
    names = [meta.name for _, meta, _ in nr.open_items()]
    assert names[0] == hostile
    assert names[1].endswith(".pdf")
    assert names[1].startswith("жжж")
    assert len(names[1].encode()) <= envelope.META_NAME_MAX
    assert names[2] == "bad?name.txt"


def test_second_submission_continues_the_sequence(nr: Newsroom) -> None:
    for text in ("first", "second"):
        submissions.accept_server_submission(
            nr.db, nr.store, nr.identity, nr.source_id, text, [], LIMITS
        )
        nr.db.commit()
    assert [content for _, _, content in nr.open_items()] == [b"first", b"second"]
    assert list(nr.db.scalars(select(Item.seq).order_by(Item.seq))) == [1, 2]


def test_files_without_a_message_and_a_blank_message(nr: Newsroom) -> None:
    receipt = submissions.accept_server_submission(
        nr.db, nr.store, nr.identity, nr.source_id, " \r\n\t", [nr.upload("a", b"a")], LIMITS
    )
    nr.db.commit()
    assert (receipt.messages, receipt.files) == (0, 1)
    assert [kind for kind, _, _ in nr.open_items()] == [2]


@pytest.mark.parametrize(
    ("message", "file_count", "reason"),
    [
        ("", 0, "empty"),
        ("  \n ", 0, "empty"),
        ("x" * (LIMITS.max_message_chars + 1), 0, "message_too_long"),
        ("x" * (LIMITS.max_message_chars + 1), 1, "message_too_long"),
        ("hello", LIMITS.max_files + 1, "too_many_files"),
    ],
)
def test_server_refusals_store_nothing(
    nr: Newsroom, message: str, file_count: int, reason: str
) -> None:
    files = [nr.upload(f"f{i}", b"data") for i in range(file_count)]
    with pytest.raises(SubmissionRejected) as refused:
        submissions.accept_server_submission(
            nr.db, nr.store, nr.identity, nr.source_id, message, files, LIMITS
        )
    assert (refused.value.status, refused.value.reason) == (400, reason)
    assert message not in str(refused.value) or not message.strip()
    assert not any(upload.finished for upload in files)
    _stored_nothing(nr)


def test_unknown_source_is_refused(nr: Newsroom) -> None:
    with pytest.raises(SubmissionRejected, match="unknown_source"):
        submissions.accept_server_submission(
            nr.db, nr.store, nr.identity, bytes(16), "hi", [], LIMITS
        )
    _stored_nothing(nr)


def test_an_upload_of_another_source_is_a_bug_and_stores_nothing(nr: Newsroom) -> None:
    upload = nr.upload("a", b"a")
    with pytest.raises(ValueError, match="another source"):
        submissions.accept_server_submission(
            nr.db, nr.store, nr.identity, new_public_id(), "hi", [upload], LIMITS
        )
    _stored_nothing(nr)


def test_file_crossing_the_limit_mid_stream_is_413_and_leaves_nothing(nr: Newsroom) -> None:
    upload = EncryptingUpload(nr.store, nr.source_id, "big.bin", "x/y", 100_000)
    upload.write(bytes(65_536))
    assert [p.name.startswith(TEMP_PREFIX) for p in _files(nr.store.root)] == [True]
    with pytest.raises(SubmissionRejected) as refused:
        upload.write(bytes(65_536))
    assert (refused.value.status, refused.value.reason) == (413, "file_too_large")
    assert not upload.finished
    with pytest.raises(ValueError, match="not open"):
        upload.write(b"more")
    _stored_nothing(nr)


def test_abort_removes_a_temporary_file_or_a_finished_blob(nr: Newsroom) -> None:
    streaming = EncryptingUpload(nr.store, nr.source_id, "a", "x/y", MIB)
    streaming.write(b"secret")
    finished = nr.upload("b", b"secret")
    ciphertext = CiphertextUpload(nr.store, MIB)
    ciphertext.write(b"\x00" * 10)
    assert len(_files(nr.store.root)) == 3
    for upload in (streaming, finished, ciphertext):
        upload.abort()
        upload.abort()  # idempotent
    assert _files(nr.store.root) == []


def test_database_error_leaves_no_blob(nr: Newsroom) -> None:
    files = [nr.upload("a.txt", b"a" * 5000), nr.upload("b.txt", b"b" * 5000)]
    # Provoke a unique violation on insert: another source already holds the second
    # file's item id.
    other = sources.create_source(nr.db)
    other_row = nr.db.scalars(select(Source).where(Source.public_id == other.public_id)).one()
    nr.db.add(
        Item(
            public_id=files[1].item_id,
            source_id=other_row.id,
            seq=1,
            kind=2,
            blob_id="f" * 32,
            blob_size=4137,
            sealed_meta=bytes(1064),
        )
    )
    nr.db.commit()
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        submissions.accept_server_submission(
            nr.db, nr.store, nr.identity, nr.source_id, "message too", files, LIMITS
        )
    assert _files(nr.store.root) == []
    # The savepoint kept the caller's transaction usable, and nothing of ours is in it.
    assert nr.db.scalar(select(func.count()).select_from(Item)) == 1
    nr.db.commit()
    assert nr.db.scalar(select(Source.next_seq).where(Source.public_id == nr.source_id)) == 1


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_transaction_ending_without_commit_deletes_the_blobs(nr: Newsroom, end: str) -> None:
    submissions.accept_server_submission(
        nr.db, nr.store, nr.identity, nr.source_id, "hello", [nr.upload("a", b"a")], LIMITS
    )
    assert len(list(nr.store.ids())) == 2
    # A later savepoint that fails does not count as the end of the transaction.
    with pytest.raises(RuntimeError), nr.db.begin_nested():
        raise RuntimeError("unrelated")
    assert len(list(nr.store.ids())) == 2
    if end == "rollback":
        nr.db.rollback()
    else:
        nr.db.close()
    _stored_nothing(nr)


def test_committed_submission_keeps_its_blobs(nr: Newsroom) -> None:
    submissions.accept_server_submission(
        nr.db, nr.store, nr.identity, nr.source_id, "hello", [nr.upload("a", b"a")], LIMITS
    )
    nr.db.commit()
    nr.db.rollback()  # a later, empty transaction ending changes nothing
    nr.db.close()
    assert len(list(nr.store.ids())) == 2
    assert len(nr.open_items()) == 2


def test_upload_repr_shows_no_key(nr: Newsroom) -> None:
    upload = nr.upload("secret-name.txt", b"content")
    assert upload.content_key.hex() not in repr(upload)
    assert "secret-name" not in repr(upload)
    upload.abort()


# --- canary ------------------------------------------------------------------------------


def _forms(canary: bytes) -> list[bytes]:
    """The canary raw, in hex (both cases) and in base64 at every alignment."""
    forms = [canary, canary.hex().encode(), canary.hex().upper().encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + canary)
        # Drop the characters that also depend on the bytes around the canary.
        forms.append(encoded[4 : len(encoded) - 4])
    return forms


def _files_under(root: Path, changed_since: float | None = None) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                stat = path.lstat()
            except OSError:
                continue  # gone meanwhile (another test's temporary file)
            # Blob times are set to the epoch: judge by the change time instead.
            if changed_since is None or stat.st_ctime >= changed_since:
                yield path


def test_canary_appears_nowhere_at_rest(nr: Newsroom, config: Config) -> None:
    started = time.time() - 1
    canary = ("CANARY-" + secrets.token_hex(12)).encode()
    content = (canary + b"\n") * (5 * MIB // (len(canary) + 1))
    # Through the streaming path, in the pieces a request would bring.
    upload = EncryptingUpload(
        nr.store, nr.source_id, canary.decode() + ".txt", "text/plain", 8 * MIB
    )
    for piece in _pieces(content, 65_000):
        upload.write(piece)
    upload.finish()
    submissions.accept_server_submission(
        nr.db,
        nr.store,
        nr.identity,
        nr.source_id,
        f"tip: {canary.decode()}",
        [upload],
        replace(LIMITS, max_file_bytes=8 * MIB),
    )
    nr.db.commit()
    assert [(meta.name, data) for _, meta, data in nr.open_items()][1] == (
        canary.decode() + ".txt",
        content,
    )
    nr.db.close()
    forms = _forms(canary)
    # The whole data directory (database, -wal, blobs, keys), and whatever changed in the
    # system temporary directory while the test ran.
    paths = {*_files_under(config.data_dir), *_files_under(nr.store.root)}
    paths |= set(_files_under(Path(tempfile.gettempdir()), changed_since=started))
    scanned = set()
    for path in sorted(paths):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        scanned.add(path)
        for form in forms:
            assert form not in data, f"canary found in {path}"
    blob_files = {nr.store.path(blob_id) for blob_id in nr.store.ids()}
    assert len(blob_files) == 2
    assert blob_files <= scanned
    if config.is_sqlite:
        database = config.data_dir / "tipbox.sqlite"
        assert database in scanned
        wal = database.with_name(database.name + "-wal")
        assert not wal.exists() or wal in scanned


# --- browser path ------------------------------------------------------------------------


@dataclass
class BrowserPost:
    """A browser-made submission, built with the envelope primitives like the script does."""

    manifest: dict[str, Any]
    blobs: dict[str, bytes]
    issued: list[bytes]
    contents: list[tuple[int, str, str, bytes]]
    text: str | None = None  # overrides the manifest when set
    limits: Limits = LIMITS
    extra: dict[str, Any] = field(default_factory=dict)

    def manifest_text(self) -> str:
        return self.text if self.text is not None else json.dumps(self.manifest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _browser_post(
    nr: Newsroom, items: list[tuple[int, str, str, bytes]], recipient: PublicKeys | None = None
) -> BrowserPost:
    recipient = recipient or nr.newsroom.public
    issued = [new_public_id() for _ in range(LIMITS.max_files + 1)]
    entries, blobs = [], {}
    for index, (kind, name, media_type, content) in enumerate(items):
        item_id = issued[index]
        key = envelope.new_content_key()
        ad = envelope.additional_data(kind, nr.source_id, item_id)
        body = io.BytesIO()
        info = envelope.encrypt_body(key, ad, content, body)
        meta = envelope.seal_meta(key, ad, Meta(name, media_type, info.plain_length))
        part = f"blob{index}"
        blobs[part] = body.getvalue()
        entries.append(
            {
                "item_id": item_id.hex(),
                "kind": kind,
                "key_id": recipient.key_id.hex(),
                "sealed_meta": _b64(meta),
                "wrap": _b64(envelope.wrap_key(key, recipient.x25519)),
                "part": part,
            }
        )
    manifest = {"version": 1, "source_id": nr.source_id.hex(), "items": entries}
    return BrowserPost(manifest, blobs, issued, items)


def _standard_post(nr: Newsroom) -> BrowserPost:
    return _browser_post(
        nr,
        [
            (1, "", envelope.TEXT_MEDIA_TYPE, "Сообщение from the browser".encode()),
            (2, "photo.jpg", "image/jpeg", secrets.token_bytes(150_000)),
            (2, "notes.txt", "text/plain", b"short"),
        ],
    )


def _parts(store: FilesystemBlobStore, blobs: dict[str, bytes]) -> dict[str, CiphertextUpload]:
    parts = {}
    for name, blob in blobs.items():
        upload = CiphertextUpload(store, submissions.max_blob_bytes(LIMITS))
        for piece in _pieces(blob):
            upload.write(piece)
        upload.finish()
        parts[name] = upload
    return parts


def _accept_browser(nr: Newsroom, post: BrowserPost) -> submissions.Receipt:
    parts = _parts(nr.store, post.blobs)
    return submissions.accept_browser_submission(
        nr.db,
        nr.store,
        nr.identity,
        nr.source_id,
        post.manifest_text(),
        parts,
        post.issued,
        post.limits,
    )


def test_browser_submission_is_accepted_and_decrypts(nr: Newsroom) -> None:
    post = _standard_post(nr)
    receipt = _accept_browser(nr, post)
    nr.db.commit()
    assert receipt.item_ids == tuple(post.issued[:3])
    assert (receipt.messages, receipt.files) == (1, 2)
    opened = nr.open_items()
    assert [(k, m.name, m.media_type, c) for k, m, c in opened] == post.contents
    assert list(nr.db.scalars(select(Item.seq).order_by(Item.seq))) == [1, 2, 3]
    assert submissions.sent_count(nr.db, nr.source_id) == 3


def test_browser_submission_to_a_retiring_key_in_its_grace_period(nr: Newsroom) -> None:
    retiring = _retiring_key(nr, since=datetime.now(UTC) - timedelta(minutes=5))
    post = _browser_post(nr, [(1, "", envelope.TEXT_MEDIA_TYPE, b"late")], retiring.public)
    _accept_browser(nr, post)
    nr.db.commit()
    assert set(nr.db.scalars(select(Wrap.key_id))) == {retiring.key_id}


def _retiring_key(nr: Newsroom, since: datetime) -> KeyPair:
    """A second newsroom key, signed into the directory as retiring since ``since``."""
    old = keypair_from_seed(Role.NEWSROOM, new_seed())
    keyring.sign_into_directory(nr.db, nr.identity_keys, old.public, Status.RETIRING)
    nr.db.add(NewsroomKey(key_id=old.key_id, retiring_since=since))
    nr.db.commit()
    return old


Mutation = Callable[[Newsroom, BrowserPost], None]


def _set(path: str, value: Any) -> Mutation:
    """Set manifest field ``path`` ("items.1.kind", "version", …) to ``value``."""

    def mutate(_nr: Newsroom, post: BrowserPost) -> None:
        *parents, last = path.split(".")
        target: Any = post.manifest
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _text(text: str) -> Mutation:
    def mutate(_nr: Newsroom, post: BrowserPost) -> None:
        post.text = text

    return mutate


def _drop_field(index: int, name: str) -> Mutation:
    def mutate(_nr: Newsroom, post: BrowserPost) -> None:
        del post.manifest["items"][index][name]

    return mutate


def _duplicate_key(_nr: Newsroom, post: BrowserPost) -> None:
    post.text = json.dumps(post.manifest)[:-1] + ', "version": 1}'


def _other_source(nr: Newsroom, post: BrowserPost) -> None:
    other = sources.create_source(nr.db)
    nr.db.commit()
    post.manifest["source_id"] = other.public_id.hex()


def _not_issued(_nr: Newsroom, post: BrowserPost) -> None:
    post.issued = post.issued[1:]


def _same_id_twice(_nr: Newsroom, post: BrowserPost) -> None:
    items = post.manifest["items"]
    items[2]["item_id"] = items[1]["item_id"]


def _already_used(nr: Newsroom, post: BrowserPost) -> None:
    first = _browser_post(nr, [(2, "x", "x/y", b"x")])
    first.issued = post.issued
    first.manifest["items"][0]["item_id"] = post.manifest["items"][1]["item_id"]
    _accept_browser(nr, first)
    nr.db.commit()


def _two_messages(_nr: Newsroom, post: BrowserPost) -> None:
    post.manifest["items"][1]["kind"] = 1


def _too_many_files(_nr: Newsroom, post: BrowserPost) -> None:
    post.limits = replace(LIMITS, max_files=1)


def _no_items(_nr: Newsroom, post: BrowserPost) -> None:
    post.manifest["items"] = []
    post.blobs = {}


def _unknown_key(_nr: Newsroom, post: BrowserPost) -> None:
    post.manifest["items"][0]["key_id"] = secrets.token_hex(16)


def _journalist_key(nr: Newsroom, post: BrowserPost) -> None:
    key_id = nr.db.scalars(select(Journalist.key_id)).one()
    assert key_id is not None
    post.manifest["items"][0]["key_id"] = key_id.hex()


def _stale_retiring_key(nr: Newsroom, post: BrowserPost) -> None:
    old = _retiring_key(nr, since=datetime.now(UTC) - timedelta(days=1))
    post.manifest["items"][0]["key_id"] = old.key_id.hex()


def _tampered_directory(nr: Newsroom, post: BrowserPost) -> None:
    from tipbox.models import DirectoryEntry

    nr.db.execute(
        update(DirectoryEntry)
        .where(DirectoryEntry.key_id == nr.newsroom.key_id)
        .values(signature=bytes(64))
    )
    nr.db.commit()


def _resize(index: int, name: str, size: int) -> Mutation:
    def mutate(_nr: Newsroom, post: BrowserPost) -> None:
        item = post.manifest["items"][index]
        item[name] = _b64(base64.b64decode(item[name])[:size].ljust(size, b"\x00"))

    return mutate


def _missing_part(_nr: Newsroom, post: BrowserPost) -> None:
    del post.blobs["blob2"]


def _unnamed_part(_nr: Newsroom, post: BrowserPost) -> None:
    post.blobs["blob7"] = post.blobs["blob2"]


def _shared_part(_nr: Newsroom, post: BrowserPost) -> None:
    post.manifest["items"][2]["part"] = "blob1"
    del post.blobs["blob2"]


def _renamed_part(_nr: Newsroom, post: BrowserPost) -> None:
    post.manifest["items"][2]["part"] = "blob9"


def _truncated_blob(_nr: Newsroom, post: BrowserPost) -> None:
    post.blobs["blob1"] = post.blobs["blob1"][:-1]


def _oversized_message(nr: Newsroom, post: BrowserPost) -> None:
    # A valid bucket, but beyond the message limit (4 bytes a character).
    big = _browser_post(nr, [(1, "", envelope.TEXT_MEDIA_TYPE, b"m" * 40_000)])
    post.manifest["items"][0] = big.manifest["items"][0] | {"item_id": post.issued[0].hex()}
    post.blobs["blob0"] = big.blobs["blob0"]


CHECKS: dict[str, tuple[Mutation, str]] = {
    # 1. well-formed JSON of exactly that shape, version 1
    "not json": (_text("{not json"), "bad_manifest"),
    "not an object": (_text("[]"), "bad_manifest"),
    "nan": (_text('{"version": NaN}'), "bad_manifest"),
    "duplicate name": (_duplicate_key, "bad_manifest"),
    "extra field": (_set("extra", 1), "bad_manifest"),
    "extra item field": (_set("items.0.extra", 1), "bad_manifest"),
    "missing item field": (_drop_field(1, "wrap"), "bad_manifest"),
    "version 2": (_set("version", 2), "bad_manifest"),
    "version true": (_set("version", True), "bad_manifest"),
    "version string": (_set("version", "1"), "bad_manifest"),
    "items not a list": (_set("items", {}), "bad_manifest"),
    "item not an object": (_set("items.1", "blob1"), "bad_manifest"),
    "source id uppercase": (
        lambda nr, p: _set("source_id", nr.source_id.hex().upper())(nr, p),
        "bad_manifest",
    ),
    "item id short": (_set("items.0.item_id", "ab" * 15), "bad_manifest"),
    "kind a string": (_set("items.0.kind", "1"), "bad_manifest"),
    "kind a float": (_set("items.0.kind", 1.0), "bad_manifest"),
    "part a number": (_set("items.0.part", 0), "bad_manifest"),
    "base64 unpadded": (
        lambda nr, p: _set("items.0.wrap", p.manifest["items"][0]["wrap"].rstrip("="))(nr, p),
        "bad_manifest",
    ),
    "base64 url alphabet": (_set("items.0.wrap", "-_" * 54), "bad_manifest"),
    "base64 with space": (
        lambda nr, p: _set("items.0.wrap", " " + p.manifest["items"][0]["wrap"])(nr, p),
        "bad_manifest",
    ),
    "too long": (lambda nr, p: _set("items.0.part", "blob0" + " " * 20_000)(nr, p), "bad_manifest"),
    # 2. the session's source
    "another source": (_other_source, "wrong_source"),
    # 3. issued to this session, unused, no id twice
    "not issued": (_not_issued, "not_issued"),
    "same id twice": (_same_id_twice, "not_issued"),
    "already used": (_already_used, "not_issued"),
    # 4. kinds 1 or 2, at most one message, at most max_files files, at least one item
    "kind reply": (_set("items.1.kind", 3), "bad_kind"),
    "kind zero": (_set("items.1.kind", 0), "bad_kind"),
    "two messages": (_two_messages, "bad_kind"),
    "too many files": (_too_many_files, "too_many_files"),
    "no items": (_no_items, "empty"),
    # 5. the current newsroom key (or a retiring one in its grace period)
    "unknown key": (_unknown_key, "stale_key"),
    "journalist key": (_journalist_key, "stale_key"),
    "retiring key past its grace": (_stale_retiring_key, "stale_key"),
    "entry does not verify": (_tampered_directory, "stale_key"),
    # 6. wrap 80 bytes, sealed meta 1064 bytes
    "short wrap": (_resize(1, "wrap", 79), "bad_envelope"),
    "long wrap": (_resize(1, "wrap", 81), "bad_envelope"),
    "short meta": (_resize(2, "sealed_meta", 1063), "bad_envelope"),
    # 7. each part names exactly one received part, every part is named
    "missing part": (_missing_part, "bad_parts"),
    "unnamed part": (_unnamed_part, "bad_parts"),
    "shared part": (_shared_part, "bad_parts"),
    "renamed part": (_renamed_part, "bad_parts"),
    # 8. each body a valid blob length within the limits
    "truncated blob": (_truncated_blob, "bad_blob"),
    "message over its limit": (_oversized_message, "bad_blob"),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_browser_checks_refuse_with_nothing_stored(nr: Newsroom, check: str) -> None:
    mutate, reason = CHECKS[check]
    post = _standard_post(nr)
    mutate(nr, post)
    parts = _parts(nr.store, post.blobs)
    with pytest.raises(SubmissionRejected) as refused:
        submissions.accept_browser_submission(
            nr.db,
            nr.store,
            nr.identity,
            nr.source_id,
            post.manifest_text(),
            parts,
            post.issued,
            post.limits,
        )
    assert (refused.value.status, refused.value.reason) == (400, reason)
    assert not any(upload.finished for upload in parts.values())
    nr.db.rollback()
    if check == "already used":  # the first, accepted submission stays, alone
        assert nr.db.scalar(select(func.count()).select_from(Item)) == 1
        assert len(_files(nr.store.root)) == 1
        return
    _stored_nothing(nr)
