"""The source-facing web app: what a source in danger sees (docs/source-app.md).

It holds no newsroom secret (DESIGN invariant 2): the import rules in ``.importlinter``
keep journalist and private-key modules out of this package. It reads the identity public
key from ``keys/`` and refuses to start if the database names another one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tipbox.config import Config
from tipbox.db import make_engine
from tipbox.startup import StartupError
from tipbox.storage import blob_store_for
from tipbox.web import TipboxFlask, create_web_app

from .errors import install_source_error_handlers
from .forms import ItemIdConverter
from .hooks import install_request_hooks
from .i18n import install_source_i18n
from .state import EXTENSION, build_state
from .upload import SourceRequest, max_request_bytes
from .views import register_views

__all__ = ["StartupError", "create_app", "wsgi"]

_HERE = Path(__file__).resolve().parent


def create_app(config: Config) -> TipboxFlask:
    """Build the source app for the instance described by ``config``.

    Raises ``StartupError`` when ``keys/`` and the database disagree on the identity key,
    or when there is no instance.
    """
    # The source app's restricted database role, when one is configured (tipbox.db_roles).
    engine = make_engine(
        replace(config, database_url=config.source_database_url or config.database_url)
    )
    try:
        source_state = build_state(config, engine, blob_store_for(config), _HERE / "static")
    except BaseException:
        engine.dispose()
        raise
    app = create_web_app(
        __name__,
        "source",
        config,
        max_content_length=max_request_bytes(source_state.limits),
    )
    app.request_class = SourceRequest
    app.extensions[EXTENSION] = source_state
    app.url_map.converters["item"] = ItemIdConverter
    install_source_i18n(app, _HERE / "translations", source_state.languages[0])
    install_request_hooks(app)
    install_source_error_handlers(app)
    register_views(app)
    return app


def wsgi() -> TipboxFlask:
    """Process-boundary factory for a WSGI server: ``gunicorn 'tipbox.source:wsgi()'``.

    Reads the environment (``TIPBOX_*``); prefer ``tipbox serve source``.
    """
    return create_app(Config.from_env())
