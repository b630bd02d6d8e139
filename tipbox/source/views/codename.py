"""Getting a codename, confirming it, and logging in with it (the Argon2id pages).

Argon2id runs only here, inside a slot of the app's budget, after the CSRF check (done
before any view runs) and after the typed codename parsed as 7 list words. The codename
exists only in the response to ``POST /generate``: no cookie, session, log or URL holds it.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, redirect, render_template, request, url_for

from tipbox.db import transaction
from tipbox.sources import confirm_codename, create_source, discard_unconfirmed, login

from .. import session as source_session
from ..access import needs
from ..floods import admit_new_source
from ..forms import typed_codename
from ..state import state

bp = Blueprint("codename", __name__)


def confirm_page(*, wrong: bool = False) -> str:
    """The confirm form without the codename: after a mistyped confirmation, or when a
    source with an unconfirmed codename opens a page that needs a confirmed one."""
    return render_template("source/confirm.html", wrong=wrong)


@bp.post("/generate")
def generate() -> str:
    """Create a source and its session; show the codename once, with the confirm form.

    A source that had not confirmed its codename yet ("start over") is discarded first.
    Past the instance's budget of new sources per minute, "busy" before any Argon2id.
    """
    st = state()
    previous = source_session.current()
    admit_new_source()
    with st.budget.slot(), transaction(st.db) as db:
        if previous is not None and not previous.confirmed:
            discard_unconfirmed(db, previous.public_id)
        new = create_source(db)
        source_session.start(db, new.public_id, new.seed, confirmed=False)
    return render_template("source/codename.html", codename=new.codename)


@bp.post("/confirm")
@needs("session")
def confirm() -> Response | str:
    """The source typed its codename back: on a match, on to the submit form."""
    st = state()
    current = source_session.current()
    assert current is not None  # the hook turned away requests without a session
    if current.confirmed:
        return redirect(url_for("submit.submit_form"), code=303)  # type: ignore[return-value]
    typed = typed_codename(request.form)
    matched = False
    if typed is not None:
        with st.budget.slot(), transaction(st.db) as db:
            matched = confirm_codename(db, current.public_id, typed)
            if matched:
                source_session.save(db, replace(current, confirmed=True))
    if not matched:
        return confirm_page(wrong=True)
    return redirect(url_for("submit.submit_form"), code=303)  # type: ignore[return-value]


@bp.get("/login")
def login_form() -> str:
    """The codename form; says so when the source's previous session has ended."""
    ended = request.args.get("ended") == "1"
    return render_template("source/login.html", ended=ended, failed=False)


@bp.post("/login")
def login_post() -> Response | str:
    """Log in with a codename (a new session); every failure gets the same answer."""
    st = state()
    typed = typed_codename(request.form)
    found = None
    if typed is not None:
        with st.budget.slot(), transaction(st.db) as db:
            found = login(db, typed)
            if found is not None:
                source_session.start(db, found.public_id, found.seed, confirmed=True)
    if found is None:
        return render_template("source/login.html", ended=False, failed=True)
    return redirect(url_for("replies.replies_page"), code=303)  # type: ignore[return-value]
