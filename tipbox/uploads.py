"""Blobs written while a request part streams in: encrypted (server path) or as sent.

``EncryptingUpload`` encrypts a file part as it arrives, straight into a blob store
temporary file, so no plaintext byte reaches the disk (DESIGN invariant 3);
``CiphertextUpload`` stores a body the browser encrypted. Either removes everything it
wrote unless a successful accept claims it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, suppress
from typing import BinaryIO, Final

from tipbox.crypto import envelope
from tipbox.crypto.envelope import BodyEncryptor, BodyInfo, Kind, Meta
from tipbox.items import delete_blobs
from tipbox.models import new_public_id
from tipbox.storage import BlobStore
from tipbox.submission_rules import SubmissionRejected

FALLBACK_MEDIA_TYPE: Final = "application/octet-stream"
# A declared media type longer than this is not a real one; it would also eat into the
# room the meta record leaves for the file name.
MAX_DECLARED_TYPE_CHARS: Final = 127


class UploadAbortedError(Exception):
    """Thrown into a blob store writer to make it remove its temporary file."""


class BlobUpload:
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
            delete_blobs(self._store, [self.blob_id])
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
            delete_blobs(self._store, [self.blob_id])

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


class EncryptingUpload(BlobUpload):
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


class CiphertextUpload(BlobUpload):
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


def claim_all(uploads: Sequence[BlobUpload]) -> None:
    """Hand every upload's blob over to a stored submission (``abort`` no longer deletes)."""
    for upload in uploads:
        upload._claim()


def abort_all(uploads: Sequence[BlobUpload]) -> None:
    """Remove whatever every upload wrote."""
    for upload in uploads:
        upload.abort()
