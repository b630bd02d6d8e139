"""The admin's journalists page: list, add, reset, role, deactivate, activate, remove, and
confirm a new key's fingerprint. Thin views over ``tipbox.journalists``.

Each action acts as the logged-in admin (``journalists.Admin`` from the session's key) and
answers with a redirect to the list, or the list again with the reason and a 400. Add and
reset show the temporary credentials once, on the page that answers the form.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from tipbox import journalists
from tipbox.accounts import Credentials
from tipbox.db import transaction

from ..qr import provisioning_uri, qr_svg
from ..readers import identity, me, reader
from ..state import state


def _admin() -> journalists.Admin:
    return journalists.Admin(me().journalist_id, reader(), identity())


def _refusal(error: journalists.AccountError) -> str:
    """The reason for a refused action, in the admin's language."""
    reasons: list[tuple[type[journalists.AccountError], str]] = [
        (journalists.UnknownJournalist, _("There is no such journalist.")),
        (journalists.UsernameTaken, _("That username is taken (perhaps by a removed account).")),
        (
            journalists.InvalidUsername,
            _("A username is 1 to 32 letters, digits, dots, dashes or underscores."),
        ),
        (journalists.FingerprintMismatch, _("That is not the fingerprint of the new key.")),
        (journalists.NotAllowed, _("That cannot be done to this account now.")),
    ]
    for kind, reason in reasons:
        if isinstance(error, kind):
            return reason
    return str(_("That cannot be done."))


def _list_page(*, error: str | None = None, status: int = 200, **values: object) -> Response:
    with transaction(state().db) as db:
        accounts = journalists.list_journalists(db, identity(), include_removed=False)
    html = render_template(
        "journalist/admin/journalists.html",
        me=me(),
        accounts=accounts,
        states=journalists.AccountState,
        error=error,
        notice=_notice(request.args.get("done", "")),
        **values,
    )
    return Response(html, status=status, mimetype="text/html")


def _notice(done: str) -> str | None:
    notices = {
        "role": _("The role was changed."),
        "deactivate": _("The account was deactivated."),
        "activate": _("The account was activated."),
        "confirm": _("The key was confirmed: the journalist can now read."),
        "remove": _(
            "The account was removed. Rotate the newsroom key so that nothing sent from now "
            "on can be opened with a copy of its old key."
        ),
    }
    return notices.get(done)


def journalist_list() -> Response:
    """Every account with its role, state and key fingerprint, and the add form."""
    return _list_page()


def _credentials_page(credentials: Credentials) -> Response:
    uri = provisioning_uri(credentials.totp_secret, credentials.username)
    html = render_template(
        "journalist/admin/credentials.html",
        me=me(),
        credentials=credentials,
        uri=uri,
        qr=qr_svg(uri),
    )
    return Response(html, mimetype="text/html")


def _act(done: str, action: object) -> Response | BaseResponse:
    assert callable(action)
    try:
        with transaction(state().db) as db:
            result = action(db)
    except journalists.AccountError as error:
        return _list_page(error=_refusal(error), status=400)
    if isinstance(result, Credentials):
        return _credentials_page(result)
    return redirect(url_for("admin.journalist_list", done=done), code=303)


def add() -> Response | BaseResponse:
    """Add a journalist (``username``; ``admin=1`` for an admin) with temporary credentials."""
    username = request.form.get("username", "")
    is_admin = request.form.get("admin") == "1"
    config = state().config
    return _act(
        "add",
        lambda db: journalists.add_journalist(db, config, _admin(), username, is_admin=is_admin),
    )


def reset(username: str) -> Response | BaseResponse:
    """Give an account new temporary credentials and key (its old key is destroyed)."""
    config = state().config
    return _act("reset", lambda db: journalists.reset(db, config, _admin(), username))


def set_role(username: str) -> Response | BaseResponse:
    """Make an account an admin (``role=admin``) or a journalist (``role=journalist``)."""
    role = request.form.get("role", "")
    if role not in ("admin", "journalist"):
        return _list_page(error=_("Choose a role."), status=400)
    is_admin = role == "admin"
    return _act("role", lambda db: journalists.set_role(db, _admin(), username, is_admin=is_admin))


def deactivate(username: str) -> Response | BaseResponse:
    """Stop an account from logging in (its sessions end and its grants go)."""
    config = state().config
    return _act(
        "deactivate", lambda db: journalists.deactivate(db, _admin(), username, config=config)
    )


def activate(username: str) -> Response | BaseResponse:
    """Let a deactivated account log in again (its grants are made again)."""
    return _act("activate", lambda db: journalists.activate(db, _admin(), username))


def confirm_key(username: str) -> Response | BaseResponse:
    """Confirm the key an account made at first login, by the fingerprint read out."""
    typed = request.form.get("fingerprint", "")
    return _act(
        "confirm", lambda db: journalists.confirm_pending_key(db, _admin(), username, typed)
    )


def remove(username: str) -> Response | BaseResponse:
    """Remove an account for good (confirmed with a checkbox)."""
    if request.form.get("confirm") != "yes":
        return _list_page(error=_("Tick the box to confirm the removal."), status=400)
    config = state().config
    return _act("remove", lambda db: journalists.remove(db, _admin(), username, config=config))


def register_journalists_views(admin: Blueprint) -> None:
    """Add the journalists page and its actions to the admin blueprint."""
    admin.add_url_rule("/journalists", view_func=journalist_list, methods=["GET"])
    admin.add_url_rule("/journalists", view_func=add, methods=["POST"])
    for rule, view in (
        ("reset", reset),
        ("role", set_role),
        ("deactivate", deactivate),
        ("activate", activate),
        ("confirm-key", confirm_key),
        ("remove", remove),
    ):
        admin.add_url_rule(f"/journalists/<username>/{rule}", view_func=view, methods=["POST"])
