"""The source-facing web app (placeholder until the source interface lands).

It holds no newsroom secret (DESIGN invariant 2): the import rules in ``.importlinter``
keep journalist and private-key modules out of this package.
"""

from __future__ import annotations

from flask import Response, redirect, render_template, session, url_for

from tipbox.config import MIB, Config
from tipbox.web import TipboxFlask, create_web_app

# Placeholder bound: no page takes uploads yet. The submission issue sets the real one.
MAX_REQUEST_BYTES = 1 * MIB


def create_app(config: Config) -> TipboxFlask:
    """Build the source app for the instance described by ``config``."""
    app = create_web_app(__name__, "source", config, max_content_length=MAX_REQUEST_BYTES)

    @app.get("/")
    def index() -> str:
        return render_template("source/index.html")

    @app.get("/healthz")
    def healthz() -> Response:
        # For load balancers and the service manager: says nothing about the instance.
        return Response("ok\n", mimetype="text/plain")

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return redirect(url_for("index"), code=303)  # type: ignore[return-value]

    return app


def wsgi() -> TipboxFlask:
    """Process-boundary factory for a WSGI server: ``gunicorn 'tipbox.source:wsgi()'``.

    Reads the environment (``TIPBOX_*``); prefer ``tipbox serve source``.
    """
    return create_app(Config.from_env())
