"""Languages for the web apps: the Flask-Babel set-up both apps share.

The language comes from, in order: ``?l=<code>`` on the request (a GET remembers it in the
app's signed Flask cookie), the remembered choice, ``Accept-Language`` (Tor Browser always
sends ``en-US``, so this is only a first guess), and English. Each app keeps its own
catalogues (``<package>/translations/<code>/LC_MESSAGES/messages.po``); ``.mo`` files are
built from them by ``make translations``.

The shared error pages' wording lives in ``tipbox.web.errors`` as plain English. It is
marked for extraction here with ``N_`` (a no-op Babel extracts by default), so that each
app's catalogue carries it and its error template can translate it at render time; a test
checks that this list and ``tipbox.web.errors`` agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask import Flask, request, session
from flask_babel import Babel, get_locale

LANGUAGES: tuple[str, ...] = ("en", "ru", "kk")
# Each language named in itself: a reader looks for the name they can read.
LANGUAGE_NAMES: dict[str, str] = {"en": "English", "ru": "Русский", "kk": "Қазақша"}
LANGUAGE_ARG = "l"
LANGUAGE_SESSION_KEY = "lang"


def N_(text: str) -> str:  # noqa: N802 - the name Babel's extractor looks for by default
    """Mark ``text`` for extraction into the catalogue without translating it here."""
    return text


# Every title and message of tipbox.web.errors (ERROR_TEXTS, CSRF_TEXT and the fallback).
ERROR_MSGIDS: tuple[str, ...] = (
    N_("Bad request"),
    N_("The request could not be understood. Go back and try again."),
    N_("Not logged in"),
    N_("Log in to see this page."),
    N_("Forbidden"),
    N_("You are not allowed to do this."),
    N_("Not found"),
    N_("There is nothing at this address."),
    N_("Method not allowed"),
    N_("This address does not accept that kind of request."),
    N_("Too large"),
    N_("What you sent is larger than this site accepts. Send less at a time, or split it up."),
    N_("Too many requests"),
    N_("The site is busy. Wait a few minutes and try again."),
    N_("Something went wrong"),
    N_("The site could not finish this request. Nothing you sent was kept. Try again later."),
    N_("Busy"),
    N_("Form expired"),
    N_(
        "This form has expired or did not come from this site. Go back, reload the page, "
        "and send it again."
    ),
    N_("The request could not be completed."),
)


def select_language(languages: Sequence[str]) -> str:
    """The language of the current request (see the module docstring for the order)."""
    asked = request.args.get(LANGUAGE_ARG)
    if asked is not None and asked in languages:
        return asked
    remembered = session.get(LANGUAGE_SESSION_KEY)
    if isinstance(remembered, str) and remembered in languages:
        return remembered
    best = request.accept_languages.best_match(languages)
    return best if best is not None else languages[0]


def current_language() -> str:
    """The code of the language the current request is answered in (``en``, ``ru``, ...)."""
    locale = get_locale()
    return "en" if locale is None else str(locale)


def install_i18n(app: Flask, translations_dir: Path, languages: Sequence[str] = LANGUAGES) -> None:
    """Set up Flask-Babel on ``app`` with the catalogues in ``translations_dir``.

    Templates get ``_``/``ngettext`` (new-style: ``_("%(n)s files", n=3)`` escapes its
    arguments), ``current_language`` and ``languages`` (code and own name, for a switcher).
    """
    choices = tuple(languages)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(translations_dir.resolve())
    app.config["BABEL_DEFAULT_LOCALE"] = choices[0]
    Babel(app, locale_selector=lambda: select_language(choices))

    def _remember_choice() -> None:
        # Only a page view (GET) changes the remembered language: a form post never does.
        if request.method not in ("GET", "HEAD"):
            return
        asked = request.args.get(LANGUAGE_ARG)
        if asked in choices and session.get(LANGUAGE_SESSION_KEY) != asked:
            session[LANGUAGE_SESSION_KEY] = asked

    def _template_values() -> dict[str, object]:
        return {
            "current_language": current_language(),
            "languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in choices],
        }

    app.before_request(_remember_choice)
    app.context_processor(_template_values)
