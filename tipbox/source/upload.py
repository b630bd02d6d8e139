"""The source app's request class: file parts are encrypted while they stream in.

Werkzeug's default stream factory spools any file part over 500 KB to a plaintext
temporary file, and it is not told the part's field name. ``SourceRequest`` replaces the
multipart parser instead (``make_form_data_parser``): each file part is routed by its
field name the moment its headers arrive, before a byte of it is read:

- ``files`` (server path): an ``EncryptingUpload`` encrypts it into a blob store temporary
  file; the part's end completes the blob and seals its meta;
- ``blob<N>`` (browser path): a ``CiphertextUpload`` stores the browser's ciphertext as is;
- anything else, or any file part in a request without an ``UploadContext`` (no source
  session): 400, before anything is written; so is a ``files`` part, or a ``blob<N>``
  part beyond the message's, when the limits accept no file (``files_not_accepted``).

Text fields stay in memory, bounded by the message limit. No stream factory is ever used:
the one handed to Werkzeug refuses, so a change in Werkzeug fails closed rather than
spooling plaintext. A limit crossed, a client that disconnects or a malformed body aborts
every upload of the request at once (temporary files removed); so does
``discard_uploads`` at teardown for every upload no domain function took over.

The app sets the context before anything reads the form (Flask-WTF's CSRF check does, in
a ``before_request`` function registered when the app is made): put an ``UploadContext``,
or a function returning one or None, in ``request.environ[UPLOAD_CONTEXT_KEY]`` — from a
``url_value_preprocessor`` (they run before every ``before_request`` function) or a WSGI
middleware.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol, cast

import flask
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from tipbox.capacity import DISK_FULL, is_out_of_space
from tipbox.config import MIB
from tipbox.storage import BlobStore
from tipbox.submission_rules import Limits, SubmissionRejected, max_blob_bytes, no_files
from tipbox.uploads import CiphertextUpload, EncryptingUpload

__all__ = [
    "FILES_FIELD",
    "MESSAGE_FIELD",
    "UPLOAD_CONTEXT_KEY",
    "SourceRequest",
    "UploadContext",
    "UploadRefused",
    "UploadTooLarge",
    "browser_parts",
    "discard_uploads",
    "form_memory_bytes",
    "http_error",
    "max_request_bytes",
    "server_uploads",
]

UPLOAD_CONTEXT_KEY: Final = "tipbox.upload"
_ROUTER_KEY: Final = "tipbox.upload.router"
FILES_FIELD: Final = "files"
MESSAGE_FIELD: Final = "message"
# blob0, blob1, …: the browser path's parts (docs/source-app.md 4.2).
_BLOB_PART: Final = re.compile(r"blob(?:0|[1-9][0-9]{0,3})")
# Room beside the message for the other text fields (CSRF token, mode, the manifest).
FORM_SLACK_BYTES: Final = 64 * 1024
# Werkzeug's decoder checks the form memory limit against its buffer for every part, file
# parts included; the buffer holds one read plus a partial boundary.
READ_BYTES: Final = 64 * 1024
MIN_FORM_MEMORY_BYTES: Final = 4 * READ_BYTES


@dataclass(frozen=True)
class UploadContext:
    """What the request class needs to route file parts: where blobs go, whose they are,
    and the limits."""

    store: BlobStore
    source_id: bytes
    limits: Limits


ContextProvider = Callable[[], UploadContext | None]


class UploadRefused(BadRequest):
    """A 400 from the request class; ``reason`` is a ``SubmissionRejected`` reason."""

    def __init__(self, reason: str) -> None:
        """Refuse for ``reason``."""
        super().__init__()
        self.reason = reason


class UploadTooLarge(RequestEntityTooLarge):
    """A 413 from the request class (a file over the limit); ``reason`` as above."""

    def __init__(self, reason: str) -> None:
        """Refuse for ``reason``."""
        super().__init__()
        self.reason = reason


class UploadNoRoom(HTTPException):
    """A 507 from the request class: no room for files (``tipbox.capacity``)."""

    code = 507
    description = "There is no room to store files right now."

    def __init__(self, reason: str) -> None:
        """Refuse for ``reason`` (``disk_full`` or ``storage_cap``)."""
        super().__init__()
        self.reason = reason


def http_error(rejected: SubmissionRejected) -> HTTPException:
    """The HTTP exception that answers a refusal: 413 ``UploadTooLarge``, 507
    ``UploadNoRoom`` or 400 ``UploadRefused``."""
    if rejected.status == 413:
        return UploadTooLarge(rejected.reason)
    if rejected.status == 507:
        return UploadNoRoom(rejected.reason)
    return UploadRefused(rejected.reason)


def form_memory_bytes(limits: Limits) -> int:
    """The most memory one text field may take: the longest message in UTF-8, plus slack."""
    return max(limits.max_message_bytes + FORM_SLACK_BYTES, MIN_FORM_MEMORY_BYTES)


def max_request_bytes(limits: Limits) -> int:
    """A bound for the whole request body (``MAX_CONTENT_LENGTH``) on either path.

    Every item at the larger of its limits as a browser blob (padding and tags included),
    the text fields, and multipart framing.
    """
    return (limits.max_files + 1) * max_blob_bytes(limits) + form_memory_bytes(limits) + MIB


# --- routing file parts ------------------------------------------------------------------


class _Part(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def finish(self) -> None: ...


class _EmptyPart:
    """A ``files`` part with no file name: a browser's "no file chosen". Holds nothing."""

    def write(self, data: bytes) -> int:
        if data:
            raise SubmissionRejected("unexpected_part")
        return 0

    def finish(self) -> None:
        """Nothing to complete."""


def _refuse_stream_factory(*_args: Any, **_kwargs: Any) -> IO[bytes]:
    # Every file part goes through _Router; reaching here would mean spooling plaintext.
    raise UploadRefused("unexpected_part")


class _Router:
    """The uploads of one request: creates, counts and, on failure, aborts them."""

    def __init__(self, context: UploadContext | None) -> None:
        self.context = context
        self.uploads: list[EncryptingUpload | CiphertextUpload] = []
        self.server: list[EncryptingUpload] = []
        self.browser: dict[str, CiphertextUpload] = {}
        self.failed = False

    def open(self, part: File) -> _Part:
        """The sink for a file part, chosen by its field name; refuse before any byte."""
        context = self.context
        if context is None or self.failed:
            raise SubmissionRejected("no_session")
        # The two paths never mix in one request.
        if part.name == FILES_FIELD and not self.browser:
            return self._server_part(context, part)
        if _BLOB_PART.fullmatch(part.name) and not self.server:
            return self._browser_part(context, part)
        raise SubmissionRejected("unexpected_part")

    def _server_part(self, context: UploadContext, part: File) -> _Part:
        if not part.filename:
            return _EmptyPart()
        if not context.limits.accepts_files:
            raise no_files(context.limits)
        if len(self.server) >= context.limits.max_files:
            raise SubmissionRejected("too_many_files")
        upload = EncryptingUpload(
            context.store,
            context.source_id,
            part.filename,
            part.headers.get("content-type", ""),
            context.limits.max_file_bytes,
        )
        self.uploads.append(upload)
        self.server.append(upload)
        return upload

    def _browser_part(self, context: UploadContext, part: File) -> _Part:
        if part.name in self.browser:
            raise SubmissionRejected("bad_parts")
        # One message and max_files files at most (with files off, the message alone).
        if len(self.browser) > context.limits.max_files:
            if not context.limits.accepts_files:
                raise no_files(context.limits)
            raise SubmissionRejected("too_many_files")
        upload = CiphertextUpload(context.store, max_blob_bytes(context.limits))
        self.uploads.append(upload)
        self.browser[part.name] = upload
        return upload

    def fail(self) -> None:
        """The request failed: abort every upload, take no more."""
        self.failed = True
        self.discard()

    def discard(self) -> None:
        """Abort every upload that no domain function took over."""
        for upload in self.uploads:
            upload.abort()


def _context(environ: dict[str, Any]) -> UploadContext | None:
    value = environ.get(UPLOAD_CONTEXT_KEY)
    if callable(value):
        value = cast(ContextProvider, value)()
    return value if isinstance(value, UploadContext) else None


def _router(environ: dict[str, Any]) -> _Router:
    router = environ.get(_ROUTER_KEY)
    if not isinstance(router, _Router):
        router = _Router(_context(environ))
        environ[_ROUTER_KEY] = router
    return router


# --- parsing -----------------------------------------------------------------------------


class _Collector:
    """Turns decoder events into text fields (in memory) and file parts (into sinks)."""

    def __init__(self, parser: _UploadMultiPartParser) -> None:
        self._parser = parser
        self.fields: list[tuple[str, str]] = []
        self.files: list[tuple[str, FileStorage]] = []
        self._part: Field | File | None = None
        self._text: list[bytes] = []
        self._text_size = 0
        self._sink: _Part | None = None

    def start(self, part: Field | File) -> None:
        # Werkzeug gives a part without a name (no browser sends one) the name None, which
        # would become a None key in the form: refused like any unexpected part.
        if not isinstance(part.name, str):
            raise SubmissionRejected("unexpected_part")
        self._part, self._text, self._text_size = part, [], 0
        self._sink = self._parser.router.open(part) if isinstance(part, File) else None

    def data(self, event: Data) -> None:
        try:
            if self._sink is not None:
                self._sink.write(event.data)
            else:
                self._add_text(event.data)
            if not event.more_data:
                self._end()
        except OSError as error:
            # The blob disk filled up under us (tipbox.capacity): a refusal, not a failure.
            if is_out_of_space(error):
                raise SubmissionRejected(DISK_FULL, 507) from None
            raise

    def _add_text(self, data: bytes) -> None:
        self._text_size += len(data)
        limit = self._parser.max_form_memory_size
        if limit is not None and self._text_size > limit:
            if self._part is not None and self._part.name == MESSAGE_FIELD:
                raise SubmissionRejected("message_too_long")
            raise RequestEntityTooLarge()
        self._text.append(data)

    def _end(self) -> None:
        part, sink, text = self._part, self._sink, self._text
        self._part, self._sink, self._text = None, None, []
        if isinstance(part, File) and sink is not None:
            sink.finish()
            if not isinstance(sink, _EmptyPart):
                # FileStorage only carries the upload to the view; it has no read().
                stream = cast(IO[bytes], sink)
                storage = FileStorage(stream, part.filename, part.name, headers=part.headers)
                self.files.append((part.name, storage))
        elif isinstance(part, Field):
            charset = self._parser.get_part_charset(part.headers)
            self.fields.append((part.name, b"".join(text).decode(charset, "replace")))


class _UploadMultiPartParser(MultiPartParser):
    """Werkzeug's multipart parser, with file parts routed by field name (see module doc)."""

    def __init__(
        self,
        router: _Router,
        max_form_memory_size: int | None,
        max_form_parts: int | None,
        cls: type[MultiDict[str, Any]],
    ) -> None:
        super().__init__(
            stream_factory=_refuse_stream_factory,
            max_form_memory_size=max_form_memory_size,
            cls=cls,
            buffer_size=READ_BYTES,
            max_form_parts=max_form_parts,
        )
        self.router = router

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        """Parse the body; on any failure abort every upload of the request first."""
        try:
            return self._parse(stream, boundary)
        except SubmissionRejected as rejected:
            self.router.fail()
            raise http_error(rejected) from None
        except BaseException:  # a disconnect, a malformed body, a limit
            self.router.fail()
            raise

    def _parse(
        self, stream: IO[bytes], boundary: bytes
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        decoder = MultipartDecoder(
            boundary, max_form_memory_size=self.max_form_memory_size, max_parts=self.max_form_parts
        )
        collector = _Collector(self)
        for data in _chunks(stream, self.buffer_size):
            decoder.receive_data(data)
            event = decoder.next_event()
            while not isinstance(event, Epilogue | NeedData):
                if isinstance(event, Field | File):
                    collector.start(event)
                elif isinstance(event, Data):
                    collector.data(event)
                event = decoder.next_event()
        return self.cls(collector.fields), self.cls(collector.files)


def _chunks(stream: IO[bytes], size: int) -> Iterator[bytes | None]:
    """Reads of ``size`` bytes until the body ends, then None (the decoder's end marker)."""
    while data := stream.read(size):
        yield data
    yield None


class _UploadFormDataParser(FormDataParser):
    """Form parsing with ``_UploadMultiPartParser`` for multipart bodies."""

    def __init__(self, router: _Router, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.router = router

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        """Parse a multipart body with the routing parser; anything else as Werkzeug does."""
        if mimetype != "multipart/form-data":
            return super().parse(stream, mimetype, content_length, options)
        parser = _UploadMultiPartParser(
            self.router, self.max_form_memory_size, self.max_form_parts, self.cls
        )
        try:
            boundary = (options or {}).get("boundary", "").encode("ascii")
            if not boundary:
                raise ValueError("missing boundary")
            form, files = parser.parse(stream, boundary, content_length)
        except ValueError:
            # As Werkzeug does: a malformed body gives an empty form (and the CSRF check
            # then refuses it); the uploads were aborted already.
            if not self.silent:
                raise
            return stream, self.cls(), self.cls()
        return stream, form, files


class SourceRequest(flask.Request):
    """The source app's request class (``app.request_class = SourceRequest``)."""

    form_data_parser_class = _UploadFormDataParser

    def make_form_data_parser(self) -> FormDataParser:
        """The routing form parser, bound to this request's uploads."""
        return _UploadFormDataParser(
            _router(self.environ),
            stream_factory=_refuse_stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_content_length=self.max_content_length,
            max_form_parts=self.max_form_parts,
            cls=self.parameter_storage_class,
        )

    @property
    def max_form_memory_size(self) -> int | None:
        """The largest text field: from the upload context's message limit when there is
        one, else Flask's ``MAX_FORM_MEMORY_SIZE``."""
        if self._max_form_memory_size is not None:
            return self._max_form_memory_size
        # Reading the limit must not fix the context before the app has set it.
        router = _request_router(self)
        context = router.context if router is not None else _context(self.environ)
        if context is None:
            return super().max_form_memory_size
        return form_memory_bytes(context.limits)

    @max_form_memory_size.setter
    def max_form_memory_size(self, value: int | None) -> None:
        self._max_form_memory_size = value

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except BaseException:
            # Werkzeug would parse again on the next access to ``form``, from the middle
            # of the body: after a failure the form stays empty instead.
            self.__dict__.setdefault("form", self.parameter_storage_class())
            self.__dict__.setdefault("files", self.parameter_storage_class())
            raise


def _request_router(request: flask.Request) -> _Router | None:
    router = request.environ.get(_ROUTER_KEY)
    return router if isinstance(router, _Router) else None


def _parsed_router(request: flask.Request) -> _Router | None:
    _ = request.files  # parse the form if nothing has yet
    router = _request_router(request)
    # A body that failed to parse has an empty form, and its uploads are aborted.
    return router if router is not None and not router.failed else None


def server_uploads(request: flask.Request) -> list[EncryptingUpload]:
    """The request's ``files`` uploads, in order (parses the form if it was not yet)."""
    router = _parsed_router(request)
    return list(router.server) if router is not None else []


def browser_parts(request: flask.Request) -> dict[str, CiphertextUpload]:
    """The request's ``blob<N>`` uploads by part name (parses the form if it was not yet)."""
    router = _parsed_router(request)
    return dict(router.browser) if router is not None else {}


def discard_uploads(request: flask.Request) -> None:
    """Abort every upload of the request that no domain function took over.

    Call it at ``teardown_request`` and after a refused CSRF check: temporary files and
    blobs of the request are removed. Safe to call more than once.
    """
    router = _request_router(request)
    if router is not None:
        router.discard()
