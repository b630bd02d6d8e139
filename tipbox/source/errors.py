"""The source app's own answers to a refused upload, a body too large, no room for files,
"busy" and too many submissions.

Every other error goes to the shared handler (``tipbox.web.errors``), whose page this app
renders in the source's language (``templates/web/error.html`` overrides the shared one).
"""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tipbox.web.errors import render_error, wants_json

from . import session as source_session
from .hooks import UPLOAD_ENDPOINT
from .state import current_limits
from .texts import size_text
from .upload import UploadNoRoom, UploadRefused, discard_uploads
from .views.submit import submit_page

# Headers an error keeps (503's Retry-After); the shared handler keeps the same ones.
_KEPT_HEADERS = ("Retry-After",)


def _on_submit_page() -> bool:
    """True when the failed request was a confirmed source posting the submit form."""
    current = source_session.current()
    return request.endpoint == UPLOAD_ENDPOINT and current is not None and current.confirmed


def _page(body: str, error: HTTPException) -> Response:
    response = Response(body, status=error.code, mimetype="text/html")
    for name, value in error.get_headers():
        if name in _KEPT_HEADERS:
            response.headers[name] = value
    return response


def _upload_refused(error: UploadRefused | UploadNoRoom) -> Response:
    # The body was refused while the CSRF check read it, so the token went unchecked: the
    # page below changes nothing but the session's issued ids, and a cross-site post
    # carries no session cookie (SameSite=Strict), so it gets the plain error page.
    discard_uploads(request)
    if wants_json() or not _on_submit_page():
        return render_error(error)
    body, _ = submit_page(refused=error.reason, status=error.code or 400)
    return _page(body, error)


def _too_large(error: RequestEntityTooLarge) -> Response:
    discard_uploads(request)
    if wants_json():
        return render_error(error)
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and _on_submit_page():
        body, _ = submit_page(refused=reason, status=413)
        return _page(body, error)
    limits = current_limits()
    body = render_template(
        "source/too_large.html",
        limits=limits,
        max_file_size=size_text(limits.max_file_bytes),
        from_submit=request.endpoint == UPLOAD_ENDPOINT,
    )
    return _page(body, error)


def _busy(error: HTTPException) -> Response:
    if wants_json():
        return render_error(error)
    return _page(render_template("source/busy.html", own_budget=False), error)


def _too_many(error: HTTPException) -> Response:
    """The source's own submissions of this hour are spent (``floods.admit_submission``):
    the body was never read, so nothing was stored and nothing needs discarding."""
    if wants_json():
        return render_error(error)
    return _page(render_template("source/busy.html", own_budget=True), error)


def install_source_error_handlers(app: Flask) -> None:
    """Install the handlers above; they take precedence over the shared ones."""
    app.register_error_handler(UploadRefused, _upload_refused)
    app.register_error_handler(UploadNoRoom, _upload_refused)
    app.register_error_handler(429, _too_many)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(503, _busy)
