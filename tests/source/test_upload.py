"""The request class encrypts uploads while they stream in, and leaves nothing behind.

``SourceRequest`` is driven through a minimal Flask app built here (no CSRF, no session),
with real multipart bodies of several MiB, a real blob store, and the process's temporary
directory pointed at an empty folder of the test's own so that anything written there shows.
"""

from __future__ import annotations

import io
import secrets
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.test import TestResponse

from tipbox import directory, instance, keyring, sources
from tipbox.accounts import unlock_journalist
from tipbox.config import Config
from tipbox.crypto import envelope
from tipbox.crypto.keys import Role, keypair_from_seed
from tipbox.models import Item, Journalist, Wrap
from tipbox.source.upload import (
    UPLOAD_CONTEXT_KEY,
    SourceRequest,
    UploadContext,
    UploadRefused,
    UploadTooLarge,
    browser_parts,
    discard_uploads,
    max_request_bytes,
    server_uploads,
)
from tipbox.storage import TEMP_PREFIX, FilesystemBlobStore
from tipbox.submissions import Limits, accept_server_submission

MIB = 1024 * 1024
LIMITS = Limits(max_message_chars=1000, max_files=3, max_file_bytes=8 * MIB)

Part = tuple[str, str | None, str | None, bytes]  # name, file name, content type, data
View = Callable[[], Response]


def multipart(parts: list[Part]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body as a browser sends it, and its content type."""
    boundary = "----tipboxtest" + secrets.token_hex(8)
    out = io.BytesIO()
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode())
        if content_type is not None:
            out.write(f"Content-Type: {content_type}\r\n".encode())
        out.write(b"\r\n" + data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Body(io.RawIOBase):
    """``wsgi.input``: serves ``data`` (perhaps less than announced), counts what is read,
    and calls ``probe`` once when reading passes ``probe_at`` bytes."""

    def __init__(
        self, data: bytes, probe_at: int | None = None, probe: Callable[[], None] | None = None
    ) -> None:
        self._data = memoryview(data)
        self.position = 0
        self._probe_at, self._probe = probe_at, probe

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # the test client measures the body with tell() and seek()

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: len(self._data)}
        self.position = base[whence] + offset
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = min(len(buffer), len(self._data) - self.position)
        buffer[:size] = self._data[self.position : self.position + size]
        self.position += size
        if self._probe and self._probe_at is not None and self.position >= self._probe_at:
            probe, self._probe = self._probe, None
            probe()
        return size


@dataclass
class Rig:
    """The minimal app, its blob store and the (private) system temporary directory."""

    app: Flask
    store: FilesystemBlobStore
    temp_dir: Path
    source_id: bytes
    context: UploadContext | None
    view: View | None = None
    seen: list[str] = field(default_factory=list)

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def post(self, body: Body, content_type: str, length: int | None = None) -> TestResponse:
        # The test client measures the body; a truncated one announces more than it has.
        overrides = {} if length is None else {"CONTENT_LENGTH": str(length)}
        return self.client.post(
            "/submit", input_stream=body, content_type=content_type, environ_overrides=overrides
        )

    def files_on_disk(self) -> list[Path]:
        return sorted(
            p
            for root in (self.store.root, self.temp_dir)
            if root.exists()
            for p in root.rglob("*")
            if p.is_file()
        )


def _summary() -> Response:
    """What the request class made of the post (the default view)."""
    uploads = server_uploads(request)
    parts = browser_parts(request)
    return jsonify(
        fields=sorted(request.form),
        files=[(u.blob_id, u.info.plain_length if u.info else None) for u in uploads],
        parts={name: (u.blob_id, u.size, u.finished) for name, u in parts.items()},
        file_storages=sorted(request.files),
    )


def _refused(error: HTTPException) -> tuple[str, int]:
    return f"refused: {getattr(error, 'reason', 'http')}", error.code or 500


def make_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, with_context: bool = True) -> Rig:
    temp_dir = tmp_path / "system-temp"
    temp_dir.mkdir()
    # Anything that spools to the system temporary directory lands here, where it shows.
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    store = FilesystemBlobStore(tmp_path / "blobs")
    source_id = secrets.token_bytes(16)
    context = UploadContext(store, source_id, LIMITS) if with_context else None
    app = Flask(__name__)
    app.request_class = SourceRequest
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes(LIMITS)
    rig = Rig(app, store, temp_dir, source_id, context)

    @app.url_value_preprocessor
    def set_context(_endpoint: str | None, _values: dict[str, object] | None) -> None:
        if rig.context is not None:
            request.environ[UPLOAD_CONTEXT_KEY] = rig.context

    @app.post("/submit")
    def submit() -> Response:
        return (rig.view or _summary)()

    @app.teardown_request
    def teardown(_error: BaseException | None) -> None:
        discard_uploads(request)

    app.register_error_handler(UploadRefused, _refused)
    app.register_error_handler(UploadTooLarge, _refused)
    return rig


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    return make_rig(tmp_path, monkeypatch)


def canary_content(size: int) -> tuple[bytes, bytes]:
    canary = ("CANARY-" + secrets.token_hex(12)).encode()
    line = canary + b"\n"
    return canary, line * (size // len(line))


# --- streaming ---------------------------------------------------------------------------


def test_big_upload_streams_to_ciphertext_only(rig: Rig) -> None:
    canary, content = canary_content(6 * MIB)
    body, content_type = multipart(
        [
            ("csrf_token", None, None, b"token"),
            ("message", None, None, "привет".encode()),
            ("files", f"{canary.decode()}.txt", "text/plain", content),
        ]
    )
    snapshots: list[list[tuple[str, bool]]] = []

    peaks: list[int] = []

    def probe() -> None:
        # Half-way through the file: the only file anywhere is the blob store's temporary
        # file, and it holds no plaintext.
        peaks.append(tracemalloc.get_traced_memory()[1])
        snapshots.append([(p.name, canary in p.read_bytes()) for p in rig.files_on_disk()])
        tracemalloc.reset_peak()  # reading the file back here is the test's, not the app's

    stream = Body(body, probe_at=len(body) // 2, probe=probe)
    tracemalloc.start()
    try:
        response = rig.post(stream, content_type)
        peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.data
    summary = response.get_json()
    assert summary["fields"] == ["csrf_token", "message"]
    assert summary["file_storages"] == ["files"]
    assert [length for _, length in summary["files"]] == [len(content)]
    assert len(snapshots) == 1
    [(name, leaked)] = snapshots[0]
    assert name.startswith(TEMP_PREFIX)
    assert not leaked
    # Constant memory: far less than the 6 MiB that went through.
    assert max(peaks) < MIB
    # The view handed the upload to nobody: teardown removed it.
    assert rig.files_on_disk() == []


def test_accepted_upload_stays_and_decrypts(rig: Rig, db: Session, config: Config) -> None:
    result = instance.init_instance(db, config, name="Test", admin_username="admin")
    source = sources.create_source(db)
    db.commit()
    identity = directory.identity_public(db)
    rig.context = UploadContext(rig.store, source.public_id, LIMITS)
    canary, content = canary_content(3 * MIB)

    def accept() -> Response:
        receipt = accept_server_submission(
            db,
            rig.store,
            identity,
            source.public_id,
            request.form["message"],
            server_uploads(request),
            LIMITS,
        )
        db.commit()
        return jsonify(files=receipt.files, messages=receipt.messages)

    rig.view = accept
    body, content_type = multipart(
        [
            ("message", None, None, b"see attached"),
            ("files", "report.pdf", "application/pdf", content),
            ("files", "", "application/octet-stream", b""),  # "no file chosen"
        ]
    )
    response = rig.post(Body(body), content_type)
    assert response.get_json() == {"files": 1, "messages": 1}
    assert [p.parent.parent for p in rig.files_on_disk()] == [rig.store.root] * 2
    # Open the file as the newsroom does.
    admin = db.scalars(select(Journalist)).one()
    unlocked = unlock_journalist(db, identity, admin, result.admin.passphrase)
    newsroom = keypair_from_seed(
        Role.NEWSROOM,
        keyring.granted_seed(db, identity, unlocked.keypair, Role.NEWSROOM, result.newsroom.key_id),
    )
    item = db.scalars(select(Item).where(Item.kind == 2)).one()
    wrap = db.scalars(select(Wrap.wrap).where(Wrap.item_id == item.id)).one()
    key = envelope.unwrap_key(wrap, newsroom.x25519_private)
    ad = envelope.additional_data(2, source.public_id, item.public_id)
    meta = envelope.open_meta(key, ad, item.sealed_meta)
    assert (meta.name, meta.media_type, meta.size) == (
        "report.pdf",
        "application/pdf",
        len(content),
    )
    with rig.store.open(item.blob_id) as blob:
        raw = blob.read()
    assert canary not in raw
    assert b"".join(envelope.decrypt_body(key, ad, io.BytesIO(raw), meta.size)) == content


def test_truncated_body_leaves_nothing(rig: Rig) -> None:
    _, content = canary_content(4 * MIB)
    body, content_type = multipart([("files", "a.bin", "application/octet-stream", content)])
    half = Body(body[: len(body) // 2])
    response = rig.post(half, content_type, length=len(body))
    assert response.status_code == 400
    assert rig.files_on_disk() == []


def test_malformed_body_after_a_file_leaves_nothing(rig: Rig) -> None:
    _, content = canary_content(MIB)
    body, content_type = multipart([("files", "a.bin", None, content)])
    # The closing boundary never comes: Werkzeug treats the body as malformed.
    cut = body[: body.rindex(b"\r\n--")]
    response = rig.post(Body(cut), content_type)
    assert response.status_code == 200
    assert response.get_json()["files"] == []
    assert rig.files_on_disk() == []


def test_file_over_the_limit_stops_early_with_413(rig: Rig) -> None:
    content = bytes(3 * LIMITS.max_file_bytes)
    body, content_type = multipart([("files", "huge.bin", None, content)])
    stream = Body(body)
    response = rig.post(stream, content_type)
    assert response.status_code == 413
    assert response.data == b"refused: file_too_large"
    # Reading stopped at the limit, not at the end of the body.
    assert stream.position < LIMITS.max_file_bytes + MIB
    assert rig.files_on_disk() == []


def test_too_many_files_is_refused_at_the_extra_part(rig: Rig) -> None:
    files: list[Part] = [("files", f"f{i}", None, b"x" * 1000) for i in range(LIMITS.max_files)]
    body, content_type = multipart([*files, ("files", "one-too-many", None, bytes(2 * MIB))])
    stream = Body(body)
    response = rig.post(stream, content_type)
    assert (response.status_code, response.data) == (400, b"refused: too_many_files")
    assert stream.position < MIB
    assert rig.files_on_disk() == []


@pytest.mark.parametrize("name", ["attachment", "file", "blob", "blob01", "blobx", "files[]"])
def test_a_file_part_named_otherwise_is_refused(rig: Rig, name: str) -> None:
    body, content_type = multipart([(name, "a.txt", "text/plain", bytes(MIB))])
    stream = Body(body)
    response = rig.post(stream, content_type)
    assert (response.status_code, response.data) == (400, b"refused: unexpected_part")
    assert stream.position < 256 * 1024
    assert rig.files_on_disk() == []


def test_the_two_paths_do_not_mix(rig: Rig) -> None:
    body, content_type = multipart(
        [("blob0", "blob", None, bytes(5000)), ("files", "a.txt", None, b"plain")]
    )
    response = rig.post(Body(body), content_type)
    assert (response.status_code, response.data) == (400, b"refused: unexpected_part")
    assert rig.files_on_disk() == []


def test_without_context_any_file_part_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = make_rig(tmp_path, monkeypatch, with_context=False)
    body, content_type = multipart(
        [("csrf_token", None, None, b"t"), ("files", "a.txt", None, bytes(MIB))]
    )
    response = rig.post(Body(body), content_type)
    assert (response.status_code, response.data) == (400, b"refused: no_session")
    assert rig.files_on_disk() == []
    # Text fields alone are parsed as usual.
    body, content_type = multipart([("csrf_token", None, None, b"t")])
    response = rig.post(Body(body), content_type)
    assert response.get_json()["fields"] == ["csrf_token"]


def test_browser_parts_are_stored_as_sent(rig: Rig) -> None:
    blob0 = secrets.token_bytes(envelope.blob_length(100))
    blob1 = secrets.token_bytes(envelope.blob_length(200_000))
    body, content_type = multipart(
        [
            ("mode", None, None, b"browser"),
            ("manifest", None, None, b"{}"),
            ("blob0", "blob", "application/octet-stream", blob0),
            ("blob1", "blob", "application/octet-stream", blob1),
        ]
    )
    kept: dict[str, bytes] = {}

    def read_back() -> Response:
        summary = _summary()
        for name, upload in browser_parts(request).items():
            kept[name] = rig.store.path(upload.blob_id).read_bytes()
        return summary

    rig.view = read_back
    response = rig.post(Body(body), content_type)
    summary = response.get_json()
    assert summary["fields"] == ["manifest", "mode"]
    assert {n: (size, done) for n, (_, size, done) in summary["parts"].items()} == {
        "blob0": (len(blob0), True),
        "blob1": (len(blob1), True),
    }
    assert kept == {"blob0": blob0, "blob1": blob1}
    assert rig.files_on_disk() == []  # not accepted: discarded at teardown


def test_browser_part_twice_or_oversized_is_refused(rig: Rig) -> None:
    body, content_type = multipart(
        [("blob0", "blob", None, bytes(5000)), ("blob0", "blob", None, bytes(5000))]
    )
    response = rig.post(Body(body), content_type)
    assert (response.status_code, response.data) == (400, b"refused: bad_parts")
    too_big = bytes(envelope.blob_length(LIMITS.max_file_bytes) + 1)
    body, content_type = multipart([("blob0", "blob", None, too_big)])
    response = rig.post(Body(body), content_type)
    assert (response.status_code, response.data) == (413, b"refused: file_too_large")
    assert rig.files_on_disk() == []


def test_message_over_the_memory_bound_is_refused_as_too_long(rig: Rig) -> None:
    message = "я" * (2 * LIMITS.max_message_chars * 4 + 300_000)
    body, content_type = multipart([("message", None, None, message.encode())])
    response = rig.post(Body(body), content_type)
    assert (response.status_code, response.data) == (400, b"refused: message_too_long")
    assert rig.files_on_disk() == []


def test_urlencoded_forms_are_untouched(rig: Rig) -> None:
    response = rig.client.post("/submit", data={"codename": "a b c"})
    assert response.get_json()["fields"] == ["codename"]


def test_discard_after_a_failed_view_removes_finished_uploads(rig: Rig) -> None:
    def fail() -> Response:
        assert len(server_uploads(request)) == 2
        assert len(list(rig.store.ids())) == 2  # finished blobs, not yet anyone's
        raise RuntimeError("the view failed")

    rig.view = fail
    rig.app.testing = False
    body, content_type = multipart(
        [("files", "a", None, b"a" * 10), ("files", "b", None, b"b" * 70_000)]
    )
    response = rig.post(Body(body), content_type)
    assert response.status_code == 500
    assert rig.files_on_disk() == []
