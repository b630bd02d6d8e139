"""Pages anyone may open: landing (with the newsroom's logo), key, logout and its advice,
and the health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, session, url_for

from tipbox.db import transaction
from tipbox.settings import logo_png

from .. import session as source_session
from ..state import current_settings, state

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    """Landing: who runs this box, how to stay safe, and the two ways in."""
    settings = current_settings()
    logo = None if settings.logo_hash is None else url_for("pages.logo", digest=settings.logo_hash)
    return render_template(
        "source/index.html",
        instance_name=settings.name,
        description=settings.description,
        logo_url=logo,
    )


@bp.get("/logo/<item:digest>.png")
def logo(digest: bytes) -> Response:
    """The newsroom's logo, named by its hash: a PNG that tipbox re-encoded (never the
    upload itself). Any other hash, a replaced logo's included, is not found.

    Cached no more than any other response (``Cache-Control: no-store``, DESIGN 2.9), so
    that no browser cache holds a copy of the newsroom's logo.
    """
    with state().db_read() as db:
        png = logo_png(db, digest)
    if png is None:
        abort(404)
    return Response(png, mimetype="image/png")


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
