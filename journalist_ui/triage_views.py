"""Triage forms: a source's status, star, assignee, tags and read marker, and the inbox's
bulk actions (star, unstar, mark read or unread, set a status, delete), and "delete all
spam" (``tipbox.spam``).

Thin views over ``tipbox.triage`` and ``tipbox.tagging``; every one is a POST with CSRF
(the app's hooks check it) and answers with a redirect (303) to the page it came from, or,
for input it cannot use, that page again with the reason and a 400.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Flask, Response, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.wrappers import Response as BaseResponse

from tipbox import audit, conversations, spam, tagging, triage
from tipbox.db import scrub, transaction

from .filters import Filters, parse_filters
from .inbox import inbox_response, source_page
from .readers import me, metadata_keys, public_ids
from .state import state

BULK_STATUS_PREFIX = "status-"
BULK_ACTIONS = frozenset(
    {"star", "unstar", "read", "unread", "delete"}
    | {BULK_STATUS_PREFIX + name for name in triage.STATUS_BY_NAME}
)


def _back_to_source(source_id: bytes) -> BaseResponse:
    return redirect(url_for("source", source_id=source_id, done="triage"), code=303)


def set_status(source_id: bytes) -> Response | BaseResponse:
    """Set the source's status (``status``: a name such as ``review`` or ``spam``)."""
    status = triage.STATUS_BY_NAME.get(request.form.get("status", ""))
    if status is None:
        raise BadRequest()
    with transaction(state().db) as db:
        if not triage.set_status(db, [source_id], status):
            raise NotFound()
    return _back_to_source(source_id)


def set_star(source_id: bytes) -> Response | BaseResponse:
    """Star (``starred=1``) or unstar (``starred=0``) the source."""
    starred = request.form.get("starred", "")
    if starred not in ("0", "1"):
        raise BadRequest()
    with transaction(state().db) as db:
        if not triage.set_starred(db, [source_id], starred == "1"):
            raise NotFound()
    return _back_to_source(source_id)


def set_assignee(source_id: bytes) -> Response | BaseResponse:
    """Assign the source to a journalist (``assignee``: public id), or to no one (empty)."""
    raw = request.form.get("assignee", "")
    assignee = None
    if raw:
        found = public_ids("assignee")
        if len(found) != 1:
            raise BadRequest()
        assignee = found[0]
    try:
        with transaction(state().db) as db:
            if not triage.set_assignee(db, [source_id], assignee):
                raise NotFound()
    except LookupError:
        return source_page(source_id, error=_("That journalist cannot be assigned."), status=400)
    return _back_to_source(source_id)


def add_tag(source_id: bytes) -> Response | BaseResponse:
    """Tag the source (``tag``: up to 48 characters)."""
    text = request.form.get("tag", "")
    try:
        with transaction(state().db) as db:
            keys = metadata_keys(db)
            if keys is None:
                return source_page(source_id, error=_("Tags are not set up yet."), status=409)
            tagging.add_tag(db, keys, source_id, text)
    except LookupError:
        raise NotFound() from None
    except tagging.TagLimitReached:
        message = _("A source can have at most %(n)d tags.", n=tagging.MAX_TAGS_PER_SOURCE)
        return source_page(source_id, error=message, status=400)
    except ValueError:
        message = _("A tag is 1 to 48 characters, without control or direction characters.")
        return source_page(source_id, error=message, status=400)
    return _back_to_source(source_id)


def remove_tag(source_id: bytes) -> Response | BaseResponse:
    """Take a tag (``tag``) off the source."""
    try:
        with transaction(state().db) as db:
            keys = metadata_keys(db)
            if keys is not None:
                tagging.remove_tag(db, keys, source_id, request.form.get("tag", ""))
    except LookupError:
        raise NotFound() from None
    return _back_to_source(source_id)


def mark_unread(source_id: bytes) -> BaseResponse:
    """Mark the source unread for this journalist and go back to the inbox."""
    with transaction(state().db) as db:
        if not triage.mark_unread(db, me().journalist_id, [source_id]):
            raise NotFound()
    return redirect(url_for("index", done="triage"), code=303)


def _back_filters() -> Filters:
    # The inbox view the form was posted from, re-validated like any inbox URL.
    back = dict(parse_qsl(request.form.get("back", "")[:2000]))
    try:
        return parse_filters(back)
    except BadRequest:
        return Filters()


def bulk() -> Response | BaseResponse:
    """Apply ``action`` to every ``source`` ticked on the inbox page."""
    filters = _back_filters()
    sources = public_ids("source")
    action = request.form.get("action", "")
    if not sources:
        return inbox_response(filters, error=_("Tick at least one source first."), status=400)
    if action not in BULK_ACTIONS:
        return inbox_response(filters, error=_("Choose an action from the list."), status=400)
    if action == "delete" and request.form.get("confirm") != "yes":
        return inbox_response(filters, error=_("Tick the box to confirm the deletion."), status=400)
    st = state()
    with transaction(st.db) as db:
        _apply(db, action, sources)
    if action == "delete":
        scrub(st.engine)
    return redirect(url_for("index", done="bulk", **filters.args()), code=303)


def _apply(db: Session, action: str, sources: list[bytes]) -> None:
    journalist_id = me().journalist_id
    if action == "star":
        triage.set_starred(db, sources, True)
    elif action == "unstar":
        triage.set_starred(db, sources, False)
    elif action == "read":
        triage.mark_read(db, journalist_id, sources)
    elif action == "unread":
        triage.mark_unread(db, journalist_id, sources)
    elif action == "delete":
        deleted = sum(
            conversations.delete_source(db, state().store, source_id) for source_id in sources
        )
        audit.record(db, journalist_id, "source.delete", count=deleted)
    else:
        name = action.removeprefix(BULK_STATUS_PREFIX)
        triage.set_status(db, sources, triage.STATUS_BY_NAME[name])


# Spam sources deleted per request of "delete all spam": a few seconds of work at most.
SPAM_PER_REQUEST = 10 * spam.BATCH_SOURCES


def delete_all_spam() -> Response | BaseResponse:
    """Delete every source marked spam (confirmed with a checkbox), in batches, then scrub."""
    filters = _back_filters()
    if request.form.get("confirm") != "yes":
        return inbox_response(filters, error=_("Tick the box to confirm the deletion."), status=400)
    st = state()
    deleted = 0
    while deleted < SPAM_PER_REQUEST:
        with transaction(st.db) as db:
            done = spam.delete_spam(db, st.store, me().journalist_id)
        deleted += done
        if done < spam.BATCH_SOURCES:
            break
    if deleted:
        scrub(st.engine)
    done_name = "spam-more" if deleted >= SPAM_PER_REQUEST else "spam-deleted"
    return redirect(url_for("index", done=done_name, **filters.args()), code=303)


def register_triage_views(app: Flask) -> None:
    """Add the triage forms and the bulk action to ``app``."""
    for rule, view in (
        ("status", set_status),
        ("star", set_star),
        ("assignee", set_assignee),
        ("tags", add_tag),
        ("tags/remove", remove_tag),
        ("unread", mark_unread),
    ):
        app.add_url_rule(f"/sources/<pid:source_id>/{rule}", view_func=view, methods=["POST"])
    app.add_url_rule("/bulk", view_func=bulk, methods=["POST"])
    app.add_url_rule("/spam/delete", view_func=delete_all_spam, methods=["POST"])
