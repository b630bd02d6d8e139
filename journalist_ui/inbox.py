"""The inbox and a source's conversation: read, download, reply, note, delete (issue #4).

Thin views: each parses the request, calls ``tipbox.conversations`` (or the listing
query) in one transaction, and renders or redirects. The reader is always the session's
journalist, with the key pair made from the session's seed for this request only
(DESIGN 4.6); source content is rendered as text, never as HTML (DESIGN 2.8).

Downloads stream: ``Download.chunks()`` decrypts as it reads, in constant memory, under a
``Content-Length`` of the true size. When a check fails part-way (``Rejected``), the
generator raises ``DownloadAborted``: the WSGI server (gunicorn, Werkzeug) then closes the
connection without finishing the body, so the browser sees fewer bytes than
``Content-Length`` promised and marks the download failed. A damaged file never looks
complete.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, Conflict, NotFound, ServiceUnavailable
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response as BaseResponse

from tipbox import conversations
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import KeyPair, PublicKeys, Role, keypair_from_seed
from tipbox.db import scrub, transaction
from tipbox.models import (
    SOURCE_STATUS_DONE,
    SOURCE_STATUS_IN_PROGRESS,
    SOURCE_STATUS_NEW,
    Journalist,
)

from . import session as journalist_session
from .listing import MAX_QUERY_CHARS, inbox_page, source_designation, source_of_item
from .session import JournalistSession
from .state import state

# Where the newsroom documents how to open source files safely (offline, in a disposable VM).
OPENING_FILES_DOC = "docs/opening-files.md"
# Longest reply or note accepted from the form, in characters.
MAX_TEXT_CHARS = 100_000
STATUS_LABELS = {
    SOURCE_STATUS_NEW: "new",
    SOURCE_STATUS_IN_PROGRESS: "in progress",
    SOURCE_STATUS_DONE: "done",
}


class DownloadAbortedError(Exception):
    """Raised inside a download's body when the file fails a check part-way: the server
    drops the connection, so the download never looks complete."""


class PublicIdConverter(BaseConverter):
    """A 16-byte public id in a URL: exactly 32 lower-case hex digits."""

    regex = "[0-9a-f]{32}"

    def to_python(self, value: str) -> bytes:
        return bytes.fromhex(value)

    def to_url(self, value: object) -> str:
        if not isinstance(value, bytes):
            raise TypeError("a public id is bytes")
        return value.hex()


def _me() -> JournalistSession:
    found = journalist_session.current()
    assert found is not None  # the hook turned away requests without a session
    return found


def _reader() -> KeyPair:
    return keypair_from_seed(Role.JOURNALIST, _me().seed)


def _identity() -> PublicKeys:
    identity = state().identity
    if identity is None:
        raise ServiceUnavailable()
    return identity


def _confirmed() -> bool:
    return request.form.get("confirm") == "yes"


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise BadRequest()
    return int(raw)


def index() -> str:
    """The inbox: sources, newest activity first, 50 a page, searchable by designation."""
    page = _page_number()
    search = request.args.get("q", "")[:MAX_QUERY_CHARS]
    with transaction(state().db) as db:
        found = inbox_page(db, page, search)
    return render_template(
        "journalist/index.html", me=_me(), inbox=found, q=search, status_labels=STATUS_LABELS
    )


def _source_page(source_id: bytes, *, error: str | None = None, status: int = 200) -> Response:
    st, identity = state(), _identity()
    with transaction(st.db) as db:
        designation = source_designation(db, source_id)
        if designation is None:
            raise NotFound()
        items = conversations.conversation(db, st.store, identity, _reader(), source_id)
    html = render_template(
        "journalist/source.html",
        me=_me(),
        source_id=source_id,
        designation=designation,
        items=items,
        kind=Kind,
        error=error,
        notice=_notice(request.args.get("done", "")),
        opening_files_doc=OPENING_FILES_DOC,
    )
    return Response(html, status=status, mimetype="text/html")


def _notice(done: str) -> str | None:
    notices = {
        "reply": _("Your reply was sent."),
        "note": _("Your note was added."),
        "deleted": _("The item was deleted."),
    }
    return notices.get(done)


def source(source_id: bytes) -> Response:
    """A source's conversation: messages, files, replies and notes, oldest first."""
    return _source_page(source_id)


def download(item_id: bytes) -> Response:
    """Stream a file as an attachment; abort the connection if it fails part-way."""
    st, identity = state(), _identity()
    try:
        with transaction(st.db) as db:
            found = conversations.open_download(db, st.store, identity, _reader(), item_id)
    except conversations.NotFound:
        raise NotFound() from None
    except Rejected:
        raise Conflict() from None
    response = Response(
        _stream(found), mimetype="application/octet-stream", direct_passthrough=True
    )
    response.headers["Content-Length"] = str(found.size)
    response.headers["Content-Disposition"] = found.content_disposition
    return response


def _stream(found: conversations.Download) -> Iterator[bytes]:
    try:
        yield from found.chunks()
    except Rejected:
        raise DownloadAbortedError("the file failed a check part-way: connection dropped") from None


def _write(source_id: bytes, kind: Kind) -> Response | BaseResponse:
    st, identity = state(), _identity()
    text = request.form.get("text", "")
    if not text.strip() or len(text) > MAX_TEXT_CHARS:
        return _source_page(source_id, error=_("Write some text first."), status=400)
    add = conversations.add_reply if kind == Kind.REPLY else conversations.add_note
    try:
        with transaction(st.db) as db:
            author = db.get(Journalist, _me().journalist_id)
            if author is None:
                raise NotFound()
            add(db, st.store, identity, author, _reader(), source_id, text)
    except ValueError:
        raise NotFound() from None
    except Rejected:
        raise Conflict() from None
    done = "reply" if kind == Kind.REPLY else "note"
    return redirect(url_for("source", source_id=source_id, done=done), code=303)


def reply(source_id: bytes) -> Response | BaseResponse:
    """Send a signed reply to the source."""
    return _write(source_id, Kind.REPLY)


def note(source_id: bytes) -> Response | BaseResponse:
    """Add a signed internal note (the source never sees it)."""
    return _write(source_id, Kind.NOTE)


def delete_source(source_id: bytes) -> Response | BaseResponse:
    """Delete the source and everything of it (confirmed with a checkbox), then scrub."""
    if not _confirmed():
        return _source_page(source_id, error=_("Tick the box to confirm the deletion."), status=400)
    st = state()
    with transaction(st.db) as db:
        deleted = conversations.delete_source(db, st.store, source_id)
    if not deleted:
        raise NotFound()
    scrub(st.engine)
    return redirect(url_for("index"), code=303)


def delete_item(item_id: bytes) -> Response | BaseResponse:
    """Delete one item of a conversation (confirmed with a checkbox), then scrub."""
    st = state()
    with transaction(st.db) as db:
        source_id = source_of_item(db, item_id)
    if source_id is None:
        raise NotFound()
    if not _confirmed():
        return _source_page(source_id, error=_("Tick the box to confirm the deletion."), status=400)
    with transaction(st.db) as db:
        deleted = conversations.delete_item(db, st.store, item_id)
    if not deleted:
        raise NotFound()
    scrub(st.engine)
    return redirect(url_for("source", source_id=source_id, done="deleted"), code=303)


def register_inbox_views(app: Flask) -> None:
    """Add the inbox and source pages to ``app`` (endpoint names are the function names)."""
    app.url_map.converters["pid"] = PublicIdConverter
    app.add_url_rule("/", view_func=index, methods=["GET"])
    app.add_url_rule("/sources/<pid:source_id>", view_func=source, methods=["GET"])
    app.add_url_rule("/sources/<pid:source_id>/reply", view_func=reply, methods=["POST"])
    app.add_url_rule("/sources/<pid:source_id>/note", view_func=note, methods=["POST"])
    app.add_url_rule("/sources/<pid:source_id>/delete", view_func=delete_source, methods=["POST"])
    app.add_url_rule("/items/<pid:item_id>/download", view_func=download, methods=["GET"])
    app.add_url_rule("/items/<pid:item_id>/delete", view_func=delete_item, methods=["POST"])
