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
from werkzeug.exceptions import Conflict, NotFound
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response as BaseResponse

from tipbox import audit, capacity, conversations, tagging, triage
from tipbox.crypto.envelope import Kind
from tipbox.crypto.errors import Rejected
from tipbox.db import scrub, transaction
from tipbox.models import SOURCE_STATUS_SPAM, Journalist

from .filters import Filters, inbox_query, parse_filters
from .labels import SORT_LABELS, STATUS_LABELS
from .listing import inbox_counts, inbox_page, source_of_item, source_triage
from .readers import identity, me, metadata_keys, reader
from .state import state

# Where the newsroom documents how to open source files safely (offline, in a disposable VM).
OPENING_FILES_DOC = "docs/opening-files.md"
# Longest reply or note accepted from the form, in characters.
MAX_TEXT_CHARS = 100_000


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


def _confirmed() -> bool:
    return request.form.get("confirm") == "yes"


def index() -> Response:
    """The inbox: sources filtered, sorted and paged as the query string says."""
    return inbox_response(parse_filters(request.args))


def inbox_response(filters: Filters, *, error: str | None = None, status: int = 200) -> Response:
    """The inbox page for ``filters``, with an error above it if a form was refused."""
    journalist_id = me().journalist_id
    with transaction(state().db) as db:
        keys = metadata_keys(db)
        found = inbox_page(db, journalist_id, inbox_query(db, journalist_id, filters, keys))
        tags = tagging.tags_of(db, keys, [row.id for row in found.rows]) if keys else {}
        counts = inbox_counts(db, journalist_id)
        all_tags = tagging.all_tags(db, keys) if keys else []
        journalists = triage.active_journalists(db)
        storage = capacity.storage_use(db, state().config)
    html = render_template(
        "journalist/index.html",
        me=me(),
        inbox=found,
        tags=tags,
        counts=counts,
        all_tags=all_tags,
        tags_available=keys is not None,
        journalists=journalists,
        filters=filters,
        status_labels=STATUS_LABELS,
        status_names=triage.NAME_OF_STATUS,
        sort_labels=SORT_LABELS,
        error=error,
        notice=_notice(request.args.get("done", "")),
        storage=storage,
        spam_status=SOURCE_STATUS_SPAM,
    )
    return Response(html, status=status, mimetype="text/html")


def source_page(source_id: bytes, *, error: str | None = None, status: int = 200) -> Response:
    st = state()
    with transaction(st.db) as db:
        found = source_triage(db, source_id)
        if found is None:
            raise NotFound()
        items = conversations.conversation(db, st.store, identity(), reader(), source_id)
        if request.method == "GET":
            triage.mark_read(db, me().journalist_id, [source_id])
        keys = metadata_keys(db)
        tags = tagging.tags_of(db, keys, [found.id])[found.id] if keys else []
        journalists = triage.active_journalists(db)
    html = render_template(
        "journalist/source.html",
        me=me(),
        source_id=source_id,
        designation=found.designation,
        triage=found,
        tags=tags,
        tags_available=keys is not None,
        journalists=journalists,
        status_labels=STATUS_LABELS,
        status_names=triage.NAME_OF_STATUS,
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
        "triage": _("Saved."),
        "bulk": _("Done."),
        "source-deleted": _("The source was deleted."),
        "spam-deleted": _("Every source marked spam was deleted."),
        "spam-more": _("Many sources marked spam were deleted; delete again for the rest."),
    }
    return notices.get(done)


def source(source_id: bytes) -> Response:
    """A source's conversation: messages, files, replies and notes, oldest first."""
    return source_page(source_id)


def download(item_id: bytes) -> Response:
    """Stream a file as an attachment; abort the connection if it fails part-way."""
    st = state()
    try:
        with transaction(st.db) as db:
            found = conversations.open_download(db, st.store, identity(), reader(), item_id)
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
    st = state()
    text = request.form.get("text", "")
    if not text.strip() or len(text) > MAX_TEXT_CHARS:
        return source_page(source_id, error=_("Write some text first."), status=400)
    add = conversations.add_reply if kind == Kind.REPLY else conversations.add_note
    try:
        with transaction(st.db) as db:
            author = db.get(Journalist, me().journalist_id)
            if author is None:
                raise NotFound()
            add(db, st.store, identity(), author, reader(), source_id, text)
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
        return source_page(source_id, error=_("Tick the box to confirm the deletion."), status=400)
    st = state()
    with transaction(st.db) as db:
        deleted = conversations.delete_source(db, st.store, source_id)
        if deleted:
            audit.record(db, me().journalist_id, "source.delete", count=1)
    if not deleted:
        raise NotFound()
    scrub(st.engine)
    return redirect(url_for("index", done="source-deleted"), code=303)


def delete_item(item_id: bytes) -> Response | BaseResponse:
    """Delete one item of a conversation (confirmed with a checkbox), then scrub."""
    st = state()
    with transaction(st.db) as db:
        source_id = source_of_item(db, item_id)
    if source_id is None:
        raise NotFound()
    if not _confirmed():
        return source_page(source_id, error=_("Tick the box to confirm the deletion."), status=400)
    with transaction(st.db) as db:
        deleted = conversations.delete_item(db, st.store, item_id)
        if deleted:
            audit.record(db, me().journalist_id, "item.delete", count=1)
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
