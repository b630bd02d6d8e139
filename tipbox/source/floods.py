"""What the source app asks of the flood budgets and of the room for files (docs/abuse.md).

- ``refuse_flood_early``: a codename post (an Argon2id page) when no Argon2id slot is free
  is answered "busy" first thing, before its session, form or CSRF token is looked at,
  with a page rendered at most every few seconds: under a flood nearly every post is
  refused, and the refusals must leave the CPU to everyone else. Argon2id itself still
  runs only in the views, after the CSRF check.
- ``admit_new_source``: the instance's budget of new sources per minute, taken before a
  codename's Argon2id runs; over it, the "busy" page (503) at once.
- ``admit_submission``: the source's own budget of submissions per hour, taken before the
  body of ``POST /submit`` is read; over it, a 429 page saying when to try again.
- ``limits_for_upload`` and ``limits_for_form``: the submission limits of this request,
  lowered by the source's storage cap and the blob disk's floor (``tipbox.capacity``).
"""

from __future__ import annotations

from flask import Response, g, render_template, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import TooManyRequests

from tipbox import budgets, capacity
from tipbox.submission_rules import Limits
from tipbox.web.errors import wants_json
from tipbox.web.i18n import LANGUAGES, current_language, select_language

from .budget import RETRY_AFTER_SECONDS, Busy
from .session import SourceSession
from .state import current_limits, state

# The views that run Argon2id (docs/source-app.md section 3).
ARGON2_ENDPOINTS = frozenset({"codename.generate", "codename.confirm", "codename.login_post"})
# Where the limits of the current upload are kept on flask.g.
_UPLOAD_LIMITS_KEY = "tipbox_upload_limits"


class TooManySubmissions(TooManyRequests):
    """The source's submissions of this hour are spent: 429 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)


def refuse_flood_early() -> Response | None:
    """A "busy" answer for a codename post when no Argon2id slot is free, else None."""
    endpoint = request.endpoint
    if request.method != "POST" or endpoint not in ARGON2_ENDPOINTS or wants_json():
        return None
    st = state()
    if st.budget.any_free():
        return None

    def render() -> tuple[tuple[str, str], str]:
        page = render_template("source/busy.html", own_budget=False)
        return (endpoint, current_language()), page

    # The language this request would most likely get; the page knows the one it has.
    likely = select_language(LANGUAGES)
    page = st.busy_pages.page((endpoint, likely), render)
    response = Response(page, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def admit_new_source() -> None:
    """Take one new source from the instance's budget, or raise ``Busy``."""
    st = state()
    taken = budgets.take_new_source(st.db, st.config.new_sources_per_minute)
    if not taken.allowed:
        raise Busy(retry_after=taken.retry_after)


def admit_submission(current: SourceSession) -> None:
    """Take one submission from the source's budget, or raise ``TooManySubmissions``."""
    st = state()
    taken = budgets.take_submission(st.db, current.seed, st.config.submissions_per_hour)
    if not taken.allowed:
        raise TooManySubmissions(taken.retry_after)


def _limits_with_room(db: Session, source_public_id: bytes, incoming: int) -> Limits:
    st = state()
    limits = current_limits()
    if not limits.accepts_files:
        return limits
    used = capacity.source_usage(db, source_public_id)
    room = capacity.room_for(st.config, capacity.disk_free(st.config.blob_dir), used)
    return capacity.limits_within(limits, room, incoming)


def limits_for_upload(current: SourceSession) -> Limits:
    """The limits of this ``POST /submit``: worked out once, for the body's announced size."""
    found = g.get(_UPLOAD_LIMITS_KEY)
    if not isinstance(found, Limits):
        with state().db_read() as db:
            found = _limits_with_room(db, current.public_id, request.content_length or 0)
        setattr(g, _UPLOAD_LIMITS_KEY, found)
    return found


def limits_for_form(db: Session, current: SourceSession) -> Limits:
    """The limits to show on the submit form (those of a fresh post), in the caller's
    transaction."""
    return _limits_with_room(db, current.public_id, 0)
