"""The journalist and admin web app: login, logout and the account page (issue #4).

Journalists log in with username, generated passphrase and TOTP code; the split-key
session (DESIGN 4.6) lives in the ``tipbox_journalist_session`` cookie and its row. The
inbox, source pages and triage are in ``inbox`` and ``triage_views``.
"""

from __future__ import annotations

from pathlib import Path

from tipbox.config import MIB, Config
from tipbox.db import make_engine, make_session_factory
from tipbox.journalist_auth import Argon2Gate
from tipbox.startup import StartupError, checked_identity
from tipbox.storage import blob_store_for
from tipbox.web import TipboxFlask, create_web_app
from tipbox.web.i18n import install_i18n

from .admin import register_admin
from .hooks import install_request_hooks
from .inbox import register_inbox_views
from .request import JournalistRequest
from .state import EXTENSION, GATE_SLOTS, JournalistState
from .triage_views import register_triage_views
from .views import register_views

__all__ = ["StartupError", "create_app", "wsgi"]

_HERE = Path(__file__).resolve().parent

# Journalists post forms, and an admin a logo of at most 1 MiB; a small bound keeps abuse
# of a stolen login cheap.
MAX_REQUEST_BYTES = 2 * MIB


def create_app(config: Config) -> TipboxFlask:
    """Build the journalist app for the instance described by ``config``.

    Raises ``StartupError`` when ``keys/`` and the database disagree on the identity key,
    or either is missing (``tipbox.startup``).
    """
    app = create_web_app(__name__, "journalist", config, max_content_length=MAX_REQUEST_BYTES)
    app.request_class = JournalistRequest
    engine = make_engine(config)
    try:
        identity = checked_identity(config, make_session_factory(engine, read_only=True))
    except StartupError:
        engine.dispose()  # no pooled connection outlives a refused start
        raise
    app.extensions[EXTENSION] = JournalistState(
        config=config,
        engine=engine,
        db=make_session_factory(engine),
        gate=Argon2Gate(GATE_SLOTS),
        store=blob_store_for(config),
        identity=identity,
    )
    install_i18n(app, _HERE / "translations")  # tipbox.web.i18n.LANGUAGES: en, ru, kk
    install_request_hooks(app)
    register_views(app)
    register_inbox_views(app)
    register_triage_views(app)
    register_admin(app)
    return app


def wsgi() -> TipboxFlask:
    """Process-boundary factory for a WSGI server: ``gunicorn 'journalist_ui:wsgi()'``.

    Reads the environment (``TIPBOX_*``); prefer ``tipbox serve journalist``.
    """
    return create_app(Config.from_env())
