"""The source pages' languages: those the instance settings offer, and the switcher's links.

The offered languages are read with the request's settings (``state.current_settings``),
so an admin's change shows on the next page: a language taken off is no longer offered,
chosen with ``?l=`` or remembered. The choice itself follows ``tipbox.web.i18n`` (``?l=``,
then the remembered choice, then ``Accept-Language``, then the first offered language);
the journalist app, whose languages never change, uses ``tipbox.web.i18n.install_i18n``.

On a page reached by GET a switcher link reloads the same page in the other language
(``?l=ru``). A page that answers a form post cannot be reloaded: its links lead to the
page the source would go back to. The codename page has none, since leaving it would lose
the codename it shows once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from flask import Flask, request, session, url_for
from flask_babel import Babel
from sqlalchemy.exc import SQLAlchemyError

from tipbox.directory import NotInitialised
from tipbox.web.i18n import (
    LANGUAGE_ARG,
    LANGUAGE_NAMES,
    LANGUAGE_SESSION_KEY,
    current_language,
    select_language,
)

from . import session as source_session
from .state import current_settings, state

# Form posts, and the page their language links lead to instead.
_AFTER_POST: Mapping[str, str] = MappingProxyType(
    {
        "codename.login_post": "codename.login_form",
        "codename.confirm": "submit.submit_form",
        "submit.submit": "submit.submit_form",
        "replies.hide": "replies.replies_page",
    }
)
# Pages with no language links.
_NO_SWITCH = frozenset({"codename.generate"})


def offered_languages() -> tuple[str, ...]:
    """The languages the settings offer now, in their order (the first is the default).

    When the database cannot say, those of start-up: an error page must still render.
    """
    try:
        return current_settings().languages
    except (SQLAlchemyError, NotInitialised):
        return state().languages


def language_url(code: str) -> str | None:
    """The address of the link that switches the current page to language ``code``."""
    endpoint = request.endpoint
    if endpoint in _NO_SWITCH:
        return None
    if request.method in ("GET", "HEAD") and endpoint is not None:
        return url_for(endpoint, **(request.view_args or {}), l=code)
    target = _AFTER_POST.get(endpoint or "", "pages.index")
    return url_for(target, l=code)


def _remember_choice() -> None:
    # Only a page view (GET) changes the remembered language: a form post never does. The
    # settings are read only when a language is asked for (not for every static file).
    if request.method not in ("GET", "HEAD"):
        return
    asked = request.args.get(LANGUAGE_ARG)
    if asked is None or session.get(LANGUAGE_SESSION_KEY) == asked:
        return
    if asked in offered_languages():
        session[LANGUAGE_SESSION_KEY] = asked


def install_source_i18n(app: Flask, translations_dir: Path, default_language: str) -> None:
    """Set up Flask-Babel on the source app with the languages the settings offer.

    Templates get ``_``/``ngettext``, ``current_language``, ``languages`` (code and own
    name of each offered language, for the switcher), ``language_url`` and
    ``source_session``.
    """
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations_dir.resolve())
    app.config["BABEL_DEFAULT_LOCALE"] = default_language
    Babel(app, locale_selector=lambda: select_language(offered_languages()))

    def _values() -> dict[str, object]:
        return {
            "current_language": current_language(),
            "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in offered_languages()],
            "language_url": language_url,
            "source_session": source_session.current(),
        }

    app.before_request(_remember_choice)
    app.context_processor(_values)
