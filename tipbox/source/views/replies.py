"""The newsroom's replies, opened with the source's own key, and hiding one."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for

from tipbox.db import transaction
from tipbox.source_replies import hide_reply, replies

from .. import session as source_session
from ..access import needs
from ..state import state

bp = Blueprint("replies", __name__)


@bp.get("/replies")
@needs("confirmed")
def replies_page() -> str:
    """Every reply, oldest first; an unverified one is flagged, a damaged one not shown."""
    st = state()
    current = source_session.current()
    assert current is not None
    with transaction(st.db) as db:
        found = replies(db, st.store, st.identity, current.public_id, current.seed)
    return render_template(
        "source/replies.html", replies=found, hidden=request.args.get("hidden") == "1"
    )


@bp.post("/replies/<item:item_id>/hide")
@needs("confirmed")
def hide(item_id: bytes) -> Response:
    """Delete the source's own wrap of one reply: it can no longer be opened here."""
    st = state()
    current = source_session.current()
    assert current is not None
    with transaction(st.db) as db:
        hidden = hide_reply(db, st.store, current.public_id, item_id)
    if not hidden:
        abort(404)
    return redirect(url_for("replies.replies_page", hidden="1"), code=303)  # type: ignore[return-value]
