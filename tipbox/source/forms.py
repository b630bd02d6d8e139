"""Reading the source app's form fields: cheap checks that run before any Argon2id.

The CSRF token of every form is checked by Flask-WTF before a view runs
(``tipbox.source.hooks``); the fields here are plain HTML inputs, read by name.
"""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.routing import BaseConverter

from tipbox.crypto.codenames import parse_codename
from tipbox.crypto.errors import Rejected

CSRF_FIELD = "csrf_token"
CODENAME_FIELD = "codename"
MESSAGE_FIELD = "message"
FILES_FIELD = "files"
MODE_FIELD = "mode"
MANIFEST_FIELD = "manifest"
BROWSER_MODE = "browser"


def typed_codename(form: Mapping[str, str]) -> str | None:
    """The normalised codename from the form, or None unless it is 7 words of the list.

    None leads to the same answer as a codename that matches no source, and costs no
    Argon2id (docs/source-app.md section 3).
    """
    try:
        return parse_codename(form.get(CODENAME_FIELD, ""))
    except Rejected:
        return None


def is_browser_mode(form: Mapping[str, str]) -> bool:
    """True when the post comes from the page's script with ciphertext only."""
    return form.get(MODE_FIELD) == BROWSER_MODE


def unexpected_fields(
    form: Mapping[str, str], files: Mapping[str, object], *, browser: bool
) -> bool:
    """True when a submit post carries a field its path does not have.

    The browser path posts only the token, ``mode``, ``manifest`` and ``blob<N>`` parts;
    the server path only the token, ``message`` and ``files`` (docs/source-app.md 4.1, 4.2).
    The request class already refused any other file part and a mix of the two kinds.
    """
    if browser:
        allowed = {CSRF_FIELD, MODE_FIELD, MANIFEST_FIELD}
        wrong_files = FILES_FIELD in files
    else:
        allowed = {CSRF_FIELD, MESSAGE_FIELD}
        wrong_files = any(name != FILES_FIELD for name in files)
    return wrong_files or not set(form) <= allowed


class ItemIdConverter(BaseConverter):
    """``<item:name>`` in a route: 32 lowercase hex digits, given to the view as bytes."""

    regex = "[0-9a-f]{32}"

    def to_python(self, value: str) -> bytes:
        """The 16-byte item id."""
        return bytes.fromhex(value)

    def to_url(self, value: bytes) -> str:
        """32 hex digits."""
        return value.hex()
