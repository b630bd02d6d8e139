"""The journalist app's login, logout and account pages (thin: parse, call, render).

The inbox (``/``) and a source's pages are in ``journalist_ui.inbox``.

Each action calls one ``tipbox.journalist_auth`` function in a transaction that commits
whatever the outcome (a failed login records the failure). The account acted on is always
the session's (``session.current()``), never a form field or a URL.
"""

from __future__ import annotations

from flask import Flask, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound, ServiceUnavailable
from werkzeug.wrappers import Response as BaseResponse

from tipbox import journalist_auth as auth
from tipbox import journalists
from tipbox.db import transaction
from tipbox.journalists import AccountState

from . import session as journalist_session
from .qr import provisioning_uri, qr_svg
from .session import TOTP_PENDING, JournalistSession, utc_now
from .state import RETRY_AFTER_SECONDS, state


def _field(name: str) -> str:
    """A form field as text (missing → empty)."""
    return request.form.get(name, "")


def _me() -> JournalistSession:
    found = journalist_session.current()
    assert found is not None  # the hook turned away requests without a session
    return found


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable(retry_after=RETRY_AFTER_SECONDS)


def _redirect(endpoint: str) -> BaseResponse:
    return redirect(url_for(endpoint), code=303)


def healthz() -> Response:
    """A liveness probe that needs no session and no database."""
    return Response("ok\n", mimetype="text/plain")


def login() -> str | BaseResponse:
    """The login form; says so when the journalist's previous session has ended."""
    if journalist_session.current() is not None:
        return _redirect("index")
    ended = request.args.get("ended") == "1"
    return render_template("journalist/login.html", ended=ended, failed=False)


def login_post() -> str | BaseResponse:
    """Log in with username, passphrase and code; every failure gets the same answer."""
    st = state()
    try:
        with transaction(st.db) as db:
            found = auth.login(
                db,
                st.config,
                _field("username").strip(),
                _field("passphrase"),
                _field("code"),
                utc_now(),
                gate=st.gate,
            )
            if found is not None:
                journalist_session.start(db, found.cookie)
    except auth.Busy:
        raise _busy() from None
    if found is None:
        return render_template("journalist/login.html", ended=False, failed=True)
    if found.awaiting_confirmation:
        return _redirect("awaiting")
    return _redirect("account" if found.must_change_passphrase else "index")


def logout() -> BaseResponse:
    """End this session (a POST with its CSRF token) and go back to the login page."""
    with transaction(state().db) as db:
        journalist_session.end(db)
    return _redirect("login")


def _account_page(**values: object) -> str:
    me = _me()
    pending = me.totp_pending
    qr = uri = None
    if pending is not None:
        uri = provisioning_uri(pending, me.username)
        qr = qr_svg(uri)
    return render_template(
        "journalist/account.html", me=me, pending=pending, qr=qr, uri=uri, **values
    )


def account() -> str:
    """The account page: passphrase change, TOTP re-enrolment, other sessions."""
    return _account_page()


def change_passphrase() -> str:
    """Check the current passphrase and show the new generated one, once.

    On an admin's temporary passphrase (first login) the key is replaced too, and a
    journalist's new key then awaits an admin's confirmation: the page says so and shows
    its fingerprint.
    """
    st, me = state(), _me()
    try:
        with transaction(st.db) as db:
            if me.state == AccountState.FIRST_LOGIN:
                done = auth.complete_first_login(
                    db, st.config, me.journalist_id, _field("passphrase"), utc_now(), gate=st.gate
                )
                if done is not None:
                    journalist_session.start(db, done.login.cookie)
                    new: str | None = done.passphrase
                else:
                    new = None
            else:
                done = None
                new = auth.change_passphrase(
                    db,
                    st.config,
                    me.journalist_id,
                    _field("passphrase"),
                    utc_now(),
                    gate=st.gate,
                    keep_cookie=me.cookie,
                )
    except auth.Busy:
        raise _busy() from None
    if new is None:
        return _account_page(error=_("The passphrase was not right. Nothing was changed."))
    return render_template(
        "journalist/new_passphrase.html",
        me=me,
        passphrase=new,
        fingerprint=done.fingerprint if done is not None and not done.confirmed else None,
        first_login=done is not None,
    )


def awaiting() -> str:
    """What a journalist whose new key awaits an admin's confirmation sees: its fingerprint."""
    me = _me()
    with transaction(state().db) as db:
        fingerprint = journalists.pending_fingerprint(db, me.journalist_id, me.seed)
    if fingerprint is None:
        raise NotFound()
    return render_template("journalist/awaiting.html", me=me, fingerprint=fingerprint)


def totp_begin() -> str:
    """Make a new TOTP secret, keep it in the session box, and show it with its QR code."""
    secret = auth.begin_totp_enrolment()
    with transaction(state().db) as db:
        journalist_session.save_data(db, {**_me().data, TOTP_PENDING: secret})
    journalist_session.load()
    return _account_page()


def totp_commit() -> str:
    """Replace the TOTP secret with the session's pending one, given passphrase and code."""
    st, me = state(), _me()
    pending = me.totp_pending
    if pending is None:
        return _account_page(error=_("Start the set-up of a new code first."))
    try:
        with transaction(st.db) as db:
            done = auth.commit_totp_enrolment(
                db,
                st.config,
                me.journalist_id,
                _field("passphrase"),
                pending,
                _field("code"),
                utc_now(),
                gate=st.gate,
            )
            if done:
                data = {k: v for k, v in me.data.items() if k != TOTP_PENDING}
                journalist_session.save_data(db, data)
    except auth.Busy:
        raise _busy() from None
    if not done:
        return _account_page(
            error=_("The passphrase or the code was not right. Nothing was changed.")
        )
    journalist_session.load()
    return _account_page(notice=_("Your new two-factor code is set up."))


def logout_others() -> str:
    """End every other session of this account."""
    me = _me()
    with transaction(state().db) as db:
        count = auth.logout_others(db, me.journalist_id, me.cookie)
    return _account_page(notice=_("Other sessions ended: %(n)s.", n=count))


def register_views(app: Flask) -> None:
    """Add the pages above to ``app`` (endpoint names are the function names)."""
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/login", view_func=login, methods=["GET"])
    app.add_url_rule("/login", view_func=login_post, methods=["POST"])
    app.add_url_rule("/logout", view_func=logout, methods=["POST"])
    app.add_url_rule("/account", view_func=account, methods=["GET"])
    app.add_url_rule("/awaiting", view_func=awaiting, methods=["GET"])
    app.add_url_rule("/account/passphrase", view_func=change_passphrase, methods=["POST"])
    app.add_url_rule("/account/totp/begin", view_func=totp_begin, methods=["POST"])
    app.add_url_rule("/account/totp/commit", view_func=totp_commit, methods=["POST"])
    app.add_url_rule("/account/logout-others", view_func=logout_others, methods=["POST"])
