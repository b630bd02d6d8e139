"""The journalist and admin web app: login, logout and the account page (issue #4).

Journalists log in with username, generated passphrase and TOTP code; the split-key
session (DESIGN 4.6) lives in the ``tipbox_journalist_session`` cookie and its row. The
inbox and admin pages come later.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

from tipbox.config import MIB, Config
from tipbox.crypto.errors import Rejected
from tipbox.crypto.keys import PublicKeys, read_identity_file
from tipbox.db import make_engine, make_session_factory
from tipbox.journalist_auth import Argon2Gate
from tipbox.storage import FilesystemBlobStore
from tipbox.web import TipboxFlask, create_web_app
from tipbox.web.i18n import install_i18n

from .hooks import install_request_hooks
from .inbox import register_inbox_views
from .state import EXTENSION, GATE_SLOTS, JournalistState
from .views import register_views

__all__ = ["create_app", "wsgi"]

_HERE = Path(__file__).resolve().parent

# Journalists post forms, never files; a small bound keeps abuse of a stolen login cheap.
MAX_REQUEST_BYTES = 1 * MIB


def create_app(config: Config) -> TipboxFlask:
    """Build the journalist app for the instance described by ``config``."""
    app = create_web_app(__name__, "journalist", config, max_content_length=MAX_REQUEST_BYTES)
    engine = make_engine(config)
    app.extensions[EXTENSION] = JournalistState(
        config=config,
        engine=engine,
        db=make_session_factory(engine),
        gate=Argon2Gate(GATE_SLOTS),
        store=FilesystemBlobStore(config.blob_dir),
        identity=_identity(config),
    )
    install_i18n(app, _HERE / "translations", ("en",))
    install_request_hooks(app)
    register_views(app)
    register_inbox_views(app)
    return app


def _identity(config: Config) -> PublicKeys | None:
    """The identity public key from ``keys/`` (the trust anchor), or None if unreadable."""
    with suppress(OSError, Rejected):
        return read_identity_file(config.keys_dir)
    return None


def wsgi() -> TipboxFlask:
    """Process-boundary factory for a WSGI server: ``gunicorn 'journalist_ui:wsgi()'``.

    Reads the environment (``TIPBOX_*``); prefer ``tipbox serve journalist``.
    """
    return create_app(Config.from_env())
