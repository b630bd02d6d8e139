"""Cookie policy shared by both apps: one name per app, HttpOnly, SameSite=Strict, Secure.

Why Secure is on by default, even for the local http:// demo: browsers treat loopback and
.onion origins as secure contexts and keep Secure cookies set over plain http:// there.
Checked on this project's machines with Chromium 156 and Firefox ESR 153 against
http://127.0.0.1 and http://localhost (both kept the cookie and sent it back); Tor Browser
does the same for .onion addresses, which is how production is reached. The only setup that
loses the cookie is plain http:// to any other address (a demo opened from another machine
on the LAN, say): set ``TIPBOX_COOKIE_SECURE=0`` in the config's ``extra`` for that, never
in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

from flask import Flask

from tipbox.config import Config
from tipbox.web.headers import AppKind

COOKIE_NAMES: dict[AppKind, str] = {"source": "tipbox_source", "journalist": "tipbox_journalist"}
COOKIE_SECURE_SETTING = "TIPBOX_COOKIE_SECURE"


class SetCookieKwargs(TypedDict):
    """Keyword arguments for ``Response.set_cookie`` that carry the policy."""

    path: str
    secure: bool
    httponly: bool
    samesite: Literal["Strict"]


@dataclass(frozen=True)
class CookiePolicy:
    """How an app's cookie is set. HttpOnly and SameSite=Strict are not negotiable."""

    name: str
    secure: bool
    httponly: bool = True
    samesite: Literal["Strict"] = "Strict"
    path: str = "/"

    def set_cookie_kwargs(self) -> SetCookieKwargs:
        """Arguments for ``response.set_cookie(policy.name, value, **kwargs)``."""
        return {
            "path": self.path,
            "secure": self.secure,
            "httponly": self.httponly,
            "samesite": self.samesite,
        }


def cookie_policy(kind: AppKind, config: Config) -> CookiePolicy:
    """The cookie policy of the ``kind`` app under ``config`` (Secure unless turned off)."""
    secure = config.extra.get(COOKIE_SECURE_SETTING, "1") != "0"
    return CookiePolicy(name=COOKIE_NAMES[kind], secure=secure)


def apply_cookie_policy(app: Flask, policy: CookiePolicy) -> None:
    """Make Flask's own session cookie (which holds the CSRF secret) follow ``policy``."""
    app.config.update(
        SESSION_COOKIE_NAME=policy.name,
        SESSION_COOKIE_HTTPONLY=policy.httponly,
        SESSION_COOKIE_SAMESITE=policy.samesite,
        SESSION_COOKIE_SECURE=policy.secure,
        SESSION_COOKIE_PATH=policy.path,
        # Host-only cookie: no Domain attribute, so no sibling host ever receives it.
        SESSION_COOKIE_DOMAIN=None,
    )
    # Flask's sessions are not permanent unless a view says so: the cookie has no expiry
    # date and ends with the browser session, which is what a source wants.
