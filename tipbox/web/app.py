"""The Flask application both web apps are built on: headers, errors, CSRF, cookies, logs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from tipbox.config import Config
from tipbox.web.cookies import apply_cookie_policy, cookie_policy
from tipbox.web.errors import install_error_handlers
from tipbox.web.headers import AppKind, install_security_headers
from tipbox.web.logs import ExcInfo, configure_app_logging, describe_exception

_HERE = Path(__file__).resolve().parent

# Where a per-app Flask secret (it signs the cookie that holds the CSRF secret) may be
# given: in the config's ``extra`` as hex, or in a file under the data directory.
SECRET_KEY_SETTING = "TIPBOX_{kind}_SECRET_KEY"  # noqa: S105 (a setting name)
SECRET_KEY_FILE = "secrets/{kind}_flask.key"  # noqa: S105 (a file name)


class TipboxFlask(Flask):
    """Flask, with an exception log line that carries no request data or message."""

    def log_exception(self, exc_info: ExcInfo) -> None:
        """Log where an unhandled exception happened; Flask's version logs the path too."""
        exc = exc_info[1]
        if exc is None:
            self.logger.error("Unhandled exception")
        else:
            self.logger.error("Unhandled %s", describe_exception(exc))


def secret_key(kind: AppKind, config: Config) -> bytes:
    """The Flask secret of the ``kind`` app: configured, or from a file, or random.

    A random key lives as long as the process: forms open in a browser stop working when
    the app restarts. ``tipbox.serve`` fixes one key for all its workers, so the key is
    the same whichever worker answers.
    """
    configured = config.extra.get(SECRET_KEY_SETTING.format(kind=kind.upper()))
    if configured:
        return bytes.fromhex(configured)
    path = config.data_dir / SECRET_KEY_FILE.format(kind=kind)
    if path.is_file():
        return path.read_bytes()
    return secrets.token_bytes(32)


def write_secret_keys(config: Config) -> None:
    """Make each app's Flask secret file under the data directory, if it is missing.

    ``tipbox init`` calls this so that a form open in a browser survives a restart. The
    files are 0600 in a 0700 directory: each holds 32 random bytes and nothing else.
    """
    for kind in ("source", "journalist"):
        path = config.data_dir / SECRET_KEY_FILE.format(kind=kind)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))


def session_lifetime_seconds(kind: AppKind, config: Config) -> int:
    """The longest a session of the ``kind`` app can live (its absolute expiry)."""
    if kind == "source":
        return config.source_session_absolute_seconds
    return config.journalist_session_absolute_seconds


# Every ASCII byte stays as it is in a query string; only bytes >= 0x80 are escaped.
_ASCII: bytes = bytes(range(0x80))


class AsciiQueryString:
    """WSGI middleware: raw non-ASCII bytes in the query string are percent-encoded.

    Werkzeug decodes ``QUERY_STRING`` as strict UTF-8 when ``request.args`` is first read,
    so a raw byte such as ``0x80`` in a URL (a client may send one; no browser does) would
    raise ``UnicodeDecodeError`` in whatever hook reads the arguments: a 500. Escaped, the
    same bytes decode as before when they are UTF-8, and otherwise stay percent-encoded
    (Werkzeug's rule for invalid escapes).
    """

    def __init__(self, app: Any) -> None:
        """Wrap the WSGI callable ``app``."""
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """Escape the query string if it needs it, then call the app."""
        query = environ.get("QUERY_STRING", "")
        if isinstance(query, str) and not query.isascii():
            # PEP 3333: the server gives the raw bytes decoded as Latin-1.
            raw = query.encode("latin-1", "replace")
            environ["QUERY_STRING"] = quote(raw, safe=_ASCII)
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def web_blueprint() -> Blueprint:
    """Shared templates (``web/...``) and the stylesheet, served under ``/static-web/``."""
    return Blueprint(
        "web",
        __name__,
        template_folder=str(_HERE / "templates"),
        static_folder=str(_HERE / "static"),
        static_url_path="/static-web",
    )


def create_web_app(
    import_name: str,
    kind: AppKind,
    config: Config,
    *,
    max_content_length: int,
) -> TipboxFlask:
    """A Flask app with everything both tipbox apps share installed.

    ``import_name`` is the app's package (its own templates and static files live there);
    ``max_content_length`` bounds a request body, answered with 413 beyond it.
    """
    app = TipboxFlask(import_name)
    app.wsgi_app = AsciiQueryString(app.wsgi_app)  # type: ignore[method-assign]
    lifetime = session_lifetime_seconds(kind, config)
    app.config.update(
        SECRET_KEY=secret_key(kind, config),
        MAX_CONTENT_LENGTH=max_content_length,
        # The pages send no Referer (Referrer-Policy: no-referrer), so the strict
        # same-origin Referer check Flask-WTF does over https would refuse every form.
        WTF_CSRF_SSL_STRICT=False,
        # A form must stay valid for as long as the session it was shown in.
        WTF_CSRF_TIME_LIMIT=lifetime,
        TIPBOX_KIND=kind,
    )
    trusted = config.source_trusted_hosts if kind == "source" else config.journalist_trusted_hosts
    if trusted:
        # Any other Host header is a 400 (Werkzeug checks it when the request is built).
        app.config["TRUSTED_HOSTS"] = list(trusted)
    apply_cookie_policy(app, cookie_policy(kind, config))
    configure_app_logging(app)
    CSRFProtect(app)
    install_security_headers(app, kind)
    install_error_handlers(app)
    app.register_blueprint(web_blueprint())
    return app
