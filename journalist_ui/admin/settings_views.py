"""The admin's settings page: name, description, languages, upload limits, whether files
are accepted, retention, the automatic spam purge, and the logo. Thin views over
``tipbox.settings`` and ``tipbox.logo``; every refused field is shown next to its reason,
and nothing is stored unless every field is right.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from tipbox import logo, settings
from tipbox.config import MIB
from tipbox.db import transaction
from tipbox.settings import Problem, SettingsError
from tipbox.submission_rules import Limits
from tipbox.web.i18n import LANGUAGE_NAMES, LANGUAGES

from ..readers import me
from ..state import state

LIMIT_FIELDS = ("max_message_chars", "max_files", "max_file_bytes")


def _reason(problem: Problem) -> str:
    """A refused field's reason, in the admin's language."""
    limit = problem.limit if problem.limit is not None else 0
    if problem.field == "max_file_bytes":
        limit //= MIB  # the form asks for MiB
    reasons = {
        "empty": _("must not be empty"),
        "too_long": _("is too long (at most %(n)d characters)", n=limit),
        "bad_character": _("contains a control, direction or invisible character"),
        "unknown_language": _("names a language this tipbox cannot show"),
        "duplicate_language": _("names a language twice"),
        "not_a_number": _("must be a whole number"),
        "too_small": _("must be at least %(n)d", n=limit),
        "above_config": _("must be at most %(n)d, what this server allows", n=limit),
        "out_of_range": _("must be between 1 and %(n)d days, or off", n=limit),
        "too_large": _("is larger than %(n)d bytes", n=limit),
        "not_an_image": _("is not a PNG, JPEG, GIF or WebP image"),
        "too_many_pixels": _("has more than %(n)d pixels", n=limit),
        "unreadable": _("could not be read as an image"),
        "too_detailed": _("is too detailed to store; use a simpler image"),
    }
    return str(reasons.get(problem.reason, _("is not accepted")))


def _page(
    *, problems: tuple[Problem, ...] = (), status: int = 200, notice: str | None = None
) -> Response:
    st = state()
    with transaction(st.db) as db:
        current = settings.read(db, st.config)
    html = render_template(
        "journalist/admin/settings.html",
        me=me(),
        current=current,
        ceiling=Limits.from_config(st.config),
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        errors={problem.field: _reason(problem) for problem in problems},
        mib=MIB,
        notice=notice,
    )
    return Response(html, status=status, mimetype="text/html")


def settings_page() -> Response:
    """The settings form."""
    saved = request.args.get("done") == "saved"
    return _page(notice=_("Saved.") if saved else None)


def _number(field: str, problems: list[Problem], scale: int = 1) -> int | None:
    """A whole number from the form (blank: None, "as this server allows")."""
    text = request.form.get(field, "").strip()
    if not text:
        return None
    # isascii: "²" is a digit to isdigit() but not to int().
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        problems.append(Problem(field, "not_a_number"))
        return None
    return int(text) * scale


def save() -> Response | BaseResponse:
    """Check and store every setting of the form at once."""
    st = state()
    problems: list[Problem] = []
    limits = {
        "max_message_chars": _number("max_message_chars", problems),
        "max_files": _number("max_files", problems),
        "max_file_bytes": _number("max_file_mib", problems, scale=MIB),
    }
    retention = None
    if request.form.get("retention_off") != "1":
        retention = _number("retention_days", problems)
        if retention is None and not problems:
            problems.append(Problem("retention_days", "empty"))
    # Blank: no automatic purge of spam (the default).
    spam_purge = _number("spam_purge_days", problems)
    if problems:
        return _page(problems=tuple(problems), status=400)
    try:
        with transaction(st.db) as db:
            settings.update(
                db,
                st.config,
                me().journalist_id,
                name=request.form.get("name", ""),
                description=request.form.get("description", "").replace("\r\n", "\n"),
                languages=request.form.getlist("languages"),
                max_message_chars=limits["max_message_chars"],
                max_files=limits["max_files"],
                max_file_bytes=limits["max_file_bytes"],
                files_accepted=request.form.get("files_accepted") == "1",
                retention_days=retention,
                spam_purge_days=spam_purge,
            )
    except SettingsError as refused:
        return _page(problems=refused.problems, status=400)
    return redirect(url_for("admin.settings_page", done="saved"), code=303)


def upload_logo() -> Response | BaseResponse:
    """Re-encode an uploaded image and make it the logo."""
    st = state()
    upload = request.files.get("logo")
    data = upload.read(logo.MAX_LOGO_UPLOAD_BYTES + 1) if upload is not None else b""
    try:
        with transaction(st.db) as db:
            logo.set_logo(db, st.config, me().journalist_id, data)
    except SettingsError as refused:
        return _page(problems=refused.problems, status=400)
    return redirect(url_for("admin.settings_page", done="saved"), code=303)


def remove_logo() -> BaseResponse:
    """Remove the logo (the source pages then show the name alone)."""
    st = state()
    with transaction(st.db) as db:
        settings.remove_logo(db, st.config, me().journalist_id)
    return redirect(url_for("admin.settings_page", done="saved"), code=303)


def register_settings_views(admin: Blueprint) -> None:
    """Add the settings page and its forms to the admin blueprint."""
    admin.add_url_rule("/settings", view_func=settings_page, methods=["GET"])
    admin.add_url_rule("/settings", view_func=save, methods=["POST"])
    admin.add_url_rule("/settings/logo", view_func=upload_logo, methods=["POST"])
    admin.add_url_rule("/settings/logo/remove", view_func=remove_logo, methods=["POST"])
