"""Pages anyone may open: landing, key, logout and its advice, and the health check."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, session, url_for

from tipbox import directory
from tipbox.db import transaction

from .. import session as source_session
from ..state import state

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    """Landing: who runs this box, how to stay safe, and the two ways in."""
    with state().db_read() as db:
        settings = directory.settings(db)
        name, description = settings.name, settings.description
    return render_template("source/index.html", instance_name=name, description=description)


@bp.get("/key")
def key() -> str:
    """The identity fingerprint, and how to check it against what the newsroom publishes."""
    return render_template("source/key.html", fingerprint=state().identity.fingerprint)


@bp.post("/logout")
def logout() -> Response:
    """End the session (its row is deleted) and send the source to the advice page."""
    with transaction(state().db) as db:
        source_session.end(db)
    # A new CSRF secret for whoever uses this browser next; the language stays.
    session.pop("csrf_token", None)
    return redirect(url_for("pages.logged_out"), code=303)  # type: ignore[return-value]


@bp.get("/logged-out")
def logged_out() -> str:
    """Advice after logging out: use Tor Browser's New Identity now."""
    return render_template("source/logged_out.html")


@bp.get("/healthz")
def healthz() -> Response:
    """For load balancers and the service manager: says nothing about the instance."""
    return Response("ok\n", mimetype="text/plain")
