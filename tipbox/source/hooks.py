"""What runs around every source view, in this order (docs/source-app.md 1 to 3):

0. a codename post while no Argon2id slot is free: "busy" at once (``floods``);
1. bound the body: only ``POST /submit`` may send more than a small form;
2. open the split-key session from its cookie;
3. turn away a request that needs a session and has none (before its body is read);
4. for ``POST /submit``, take one unit of the source's budget of submissions (429 when it
   is spent), then tell the request class where uploads go and the limits of the instance
   settings lowered by the room for files (``UploadContext``), and bound the body by them;
5. the CSRF check, which parses the form (and so streams and encrypts the uploads).

Flask-WTF would run its check in a ``before_request`` function of its own, registered
before these: the app sets ``WTF_CSRF_CHECK_DEFAULT = False`` and calls ``protect()`` here
instead, so that 2 to 4 come first. Argon2id runs only in views, so never before the check.
After the view, the session cookie is set or cleared; at teardown, every upload no domain
function took over is removed.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from . import session as source_session
from .access import need_of
from .floods import admit_submission, limits_for_upload, refuse_flood_early
from .state import state
from .upload import UPLOAD_CONTEXT_KEY, UploadContext, discard_uploads, max_request_bytes
from .views.codename import confirm_page

# The endpoint that takes uploads; every other POST is a small form.
UPLOAD_ENDPOINT = "submit.submit"
FORM_MAX_BYTES = 64 * 1024
# Endpoints that need no session (the logo reads the database, but not the session).
_PASSIVE = frozenset({"static", "web.static", "pages.healthz", "pages.logo"})


def _prepare() -> ResponseReturnValue | None:
    endpoint = request.endpoint
    if endpoint is None or endpoint in _PASSIVE:
        return None
    busy = refuse_flood_early()
    if busy is not None:
        return busy
    takes_uploads = endpoint == UPLOAD_ENDPOINT and request.method == "POST"
    if not takes_uploads:
        request.max_content_length = FORM_MAX_BYTES
    source_session.load()
    turned_away = _check_access(endpoint)
    if turned_away is not None:
        return turned_away
    current = source_session.current()
    if takes_uploads and current is not None:
        admit_submission(current)
        limits = limits_for_upload(current)
        # The app's MAX_CONTENT_LENGTH is the configuration's ceiling; the settings may
        # allow less.
        request.max_content_length = max_request_bytes(limits)
        request.environ[UPLOAD_CONTEXT_KEY] = UploadContext(
            store=state().store, source_id=current.public_id, limits=limits
        )
    csrf: CSRFProtect = current_app.extensions["csrf"]
    try:
        csrf.protect()
    except CSRFError:
        discard_uploads(request)
        raise
    return None


def _check_access(endpoint: str) -> ResponseReturnValue | None:
    """Redirect a request whose view needs a (confirmed) session it does not have."""
    need = need_of(current_app.view_functions.get(endpoint))
    if need is None:
        return None
    current = source_session.current()
    if current is None:
        ended = "1" if source_session.ended() else None
        return redirect(url_for("codename.login_form", ended=ended), code=303)
    if need == "confirmed" and not current.confirmed:
        # Only the confirm form can help; a form post is not read.
        if request.method == "GET":
            return confirm_page()
        return redirect(url_for("submit.submit_form"), code=303)
    return None


def _after(response: Response) -> Response:
    return source_session.write_cookie(response)


def _teardown(_error: BaseException | None) -> None:
    discard_uploads(request)


def install_request_hooks(app: Flask) -> None:
    """Install the hooks above on the source app (after ``create_web_app``)."""
    # Our hook calls CSRFProtect.protect() itself, after the session is loaded.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(_prepare)
    app.after_request(_after)
    app.teardown_request(_teardown)
