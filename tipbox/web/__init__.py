"""What both web apps share: security headers, error pages, CSRF, cookies, logging.

An app factory calls ``create_web_app`` and adds its own views; nothing here holds state
between apps, and nothing here knows about keys, sessions or the database.
"""

from __future__ import annotations

from tipbox.web.app import TipboxFlask, create_web_app, secret_key, session_lifetime_seconds
from tipbox.web.cookies import COOKIE_NAMES, CookiePolicy, cookie_policy
from tipbox.web.errors import ERROR_TEXTS, render_error
from tipbox.web.headers import (
    JOURNALIST_CSP,
    PERMISSIONS_POLICY,
    SOURCE_CSP,
    AppKind,
    security_headers,
)
from tipbox.web.logs import ScrubFilter, configure_process_logging, describe_exception

__all__ = [
    "COOKIE_NAMES",
    "ERROR_TEXTS",
    "JOURNALIST_CSP",
    "PERMISSIONS_POLICY",
    "SOURCE_CSP",
    "AppKind",
    "CookiePolicy",
    "ScrubFilter",
    "TipboxFlask",
    "configure_process_logging",
    "cookie_policy",
    "create_web_app",
    "describe_exception",
    "render_error",
    "secret_key",
    "security_headers",
    "session_lifetime_seconds",
]
