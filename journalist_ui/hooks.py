"""What runs around every journalist view, in this order:

1. the CSRF check on every POST (Flask-WTF's own ``before_request``, installed by
   ``tipbox.web.create_web_app`` before these hooks, so Argon2id never runs before it);
2. open the split-key session from its cookie;
3. turn away a request without a session (to ``/login``, with a note when its session has
   ended), send a journalist whose new key awaits confirmation to the page that shows its
   fingerprint, and one who must change the passphrase to the account page.

After the view, the session cookie is set or cleared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, Response, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue

from tipbox.journalists import AccountState

from . import session as journalist_session

# Endpoints anyone may open (no session needed).
PUBLIC = frozenset({"static", "web.static", "healthz", "login", "login_post", "logout"})
# A view function with this attribute set to True needs no session either.
PUBLIC_ATTRIBUTE = "tipbox_public"
# What a journalist who must change the passphrase (first login: a temporary one from an
# admin) may still do.
MUST_CHANGE_ALLOWED = frozenset({"account", "change_passphrase", "logout"})
# What a journalist whose new key awaits an admin's confirmation may do: see its
# fingerprint, set up a new two-factor code (the admin who added them knew the old one),
# and log out. No content: nothing is granted to the key yet.
AWAITING_ALLOWED = frozenset({"awaiting", "account", "totp_begin", "totp_commit", "logout"})

View = TypeVar("View", bound=Callable[..., object])


def public(view: View) -> View:
    """Mark ``view`` as open without a session (every other view needs one)."""
    setattr(view, PUBLIC_ATTRIBUTE, True)
    return view


def _is_public(endpoint: str) -> bool:
    view = current_app.view_functions.get(endpoint)
    return endpoint in PUBLIC or getattr(view, PUBLIC_ATTRIBUTE, False) is True


def _prepare() -> ResponseReturnValue | None:
    endpoint = request.endpoint
    if endpoint is None or endpoint in ("static", "web.static", "healthz"):
        return None
    journalist_session.load()
    if _is_public(endpoint):
        return None
    current = journalist_session.current()
    if current is None:
        ended = "1" if journalist_session.ended() else None
        return redirect(url_for("login", ended=ended), code=303)
    if current.state == AccountState.AWAITING_CONFIRMATION:
        if endpoint not in AWAITING_ALLOWED:
            return redirect(url_for("awaiting"), code=303)
        return None
    if current.must_change_passphrase and endpoint not in MUST_CHANGE_ALLOWED:
        return redirect(url_for("account"), code=303)
    if endpoint == "awaiting":
        return redirect(url_for("index"), code=303)
    return None


def _after(response: Response) -> Response:
    return journalist_session.write_cookie(response)


def install_request_hooks(app: Flask) -> None:
    """Install the hooks above on the journalist app (after ``create_web_app``)."""
    app.before_request(_prepare)
    app.after_request(_after)
