"""The source pages' language switcher: where each language link leads.

On a page reached by GET the link reloads the same page in the other language
(``?l=ru``). A page that answers a form post cannot be reloaded: its links lead to the
page the source would go back to. The codename page has none, since leaving it would lose
the codename it shows once.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flask import Flask, request, url_for

from . import session as source_session

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


def language_url(code: str) -> str | None:
    """The address of the link that switches the current page to language ``code``."""
    endpoint = request.endpoint
    if endpoint in _NO_SWITCH:
        return None
    if request.method in ("GET", "HEAD") and endpoint is not None:
        return url_for(endpoint, **(request.view_args or {}), l=code)
    target = _AFTER_POST.get(endpoint or "", "pages.index")
    return url_for(target, l=code)


def install_source_template_values(app: Flask) -> None:
    """Give every source template ``language_url`` and ``source_session``."""

    def _values() -> dict[str, object]:
        return {"language_url": language_url, "source_session": source_session.current()}

    app.context_processor(_values)
