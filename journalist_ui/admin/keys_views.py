"""The admin's keys page: every key with its status and how many items it still wraps, and
the newsroom key's lifecycle: rotate, re-wrap (with progress), retire. Thin views over
``tipbox.rotation``; ``docs/keys.md`` explains the lifecycle.

Re-wrapping runs in the request, in batches of one transaction each, for at most
``CHUNK_SECONDS``; the answer is the progress page. While wraps are left it carries a
"continue" form: without JavaScript the admin presses it, with JavaScript
(``journalist.js``) it is pressed for them. Each batch is resumable, so a closed tab, a
timeout or a crash loses nothing; ``tipbox keys rewrap`` does the same at the command line.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from tipbox import instance, rotation
from tipbox.db import scrub, transaction

from ..readers import identity, me, reader
from ..state import state

# How long one re-wrap request works before it answers with the progress page.
CHUNK_SECONDS = 4.0


def _now() -> datetime:
    return datetime.now(UTC)


def _keys_page(*, error: str | None = None, status: int = 200) -> Response:
    st = state()
    with transaction(st.db) as db:
        report = instance.key_report(
            db, st.config.keys_dir, grace_seconds=st.config.key_grace_seconds
        )
        left = rotation.wraps_to_move(db, identity())
    html = render_template(
        "journalist/admin/keys.html",
        me=me(),
        keys=report,
        left=left,
        now=_now(),
        error=error,
        notice=_notice(request.args.get("done", "")),
    )
    return Response(html, status=status, mimetype="text/html")


def _notice(done: str) -> str | None:
    notices = {
        "rotate": _(
            "A new newsroom key is current. Re-wrap now; the old key can be retired once its "
            "grace period is over and nothing is wrapped to it."
        ),
        "retire": _("The key was retired: its grants are deleted."),
    }
    return notices.get(done)


def keys() -> Response:
    """Every key of the instance, and the lifecycle actions."""
    return _keys_page()


def rotate() -> Response | BaseResponse:
    """Make a new newsroom key current (confirmed with a checkbox)."""
    if request.form.get("confirm") != "yes":
        return _keys_page(error=_("Tick the box to confirm the rotation."), status=400)
    st = state()
    with transaction(st.db) as db:
        rotation.rotate(
            db, identity(), reader(), me().journalist_id, _now(), st.config.key_grace_seconds
        )
    return redirect(url_for("admin.keys", done="rotate"), code=303)


def rewrap() -> Response:
    """Move wraps from retiring keys to the current one for a few seconds, then show the
    progress (and sweep each key whose grace period is over)."""
    st = state()
    moved: Counter[bytes] = Counter()
    unopened, after = 0, 0
    deadline = time.monotonic() + CHUNK_SECONDS
    while time.monotonic() < deadline:
        with transaction(st.db) as db:
            batch = rotation.rewrap_batch(db, identity(), reader(), after=after)
        moved.update(batch.moved)
        unopened += batch.unopened
        after = batch.last_id
        if batch.seen < rotation.DEFAULT_BATCH:
            break
    with transaction(st.db) as db:
        swept = rotation.finish_rewrap(
            db,
            identity(),
            reader(),
            me().journalist_id,
            moved,
            _now(),
            st.config.key_grace_seconds,
        )
        left = rotation.wraps_to_move(db, identity())
    html = render_template(
        "journalist/admin/rewrap.html",
        me=me(),
        moved=sum(moved.values()),
        unopened=unopened,
        left=left - unopened if left > unopened else 0,
        swept=swept,
    )
    return Response(html, mimetype="text/html")


def retire(short_id: str) -> Response | BaseResponse:
    """Retire a retiring key once its grace period is over and nothing is wrapped to it."""
    st = state()
    try:
        with transaction(st.db) as db:
            entry = rotation.find_retiring(db, identity(), short_id)
            rotation.retire(
                db,
                identity(),
                reader(),
                me().journalist_id,
                entry.key_id,
                _now(),
                st.config.key_grace_seconds,
            )
    except rotation.NotReady:
        message = _(
            "This key cannot be retired yet: its grace period is not over, or items are "
            "still wrapped to it. Re-wrap first."
        )
        return _keys_page(error=message, status=409)
    scrub(st.engine)  # the deleted grants' old copies leave the WAL (or dead tuples)
    return redirect(url_for("admin.keys", done="retire"), code=303)


def register_keys_views(admin: Blueprint) -> None:
    """Add the keys page and the lifecycle actions to the admin blueprint."""
    admin.add_url_rule("/keys", view_func=keys, methods=["GET"])
    admin.add_url_rule("/keys/rotate", view_func=rotate, methods=["POST"])
    admin.add_url_rule("/keys/rewrap", view_func=rewrap, methods=["POST"])
    admin.add_url_rule("/keys/<short_id>/retire", view_func=retire, methods=["POST"])
