"""The journalist and admin web app (placeholder until the journalist interface lands)."""

from __future__ import annotations

from flask import Response, redirect, render_template, session, url_for

from tipbox.config import MIB, Config
from tipbox.web import TipboxFlask, create_web_app

# Journalists post forms, never files; a small bound keeps abuse of a stolen login cheap.
MAX_REQUEST_BYTES = 1 * MIB


def create_app(config: Config) -> TipboxFlask:
    """Build the journalist app for the instance described by ``config``."""
    app = create_web_app(__name__, "journalist", config, max_content_length=MAX_REQUEST_BYTES)

    @app.get("/")
    def index() -> str:
        return render_template("journalist/index.html")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.post("/logout")
    def logout() -> Response:
        session.clear()
        return redirect(url_for("index"), code=303)  # type: ignore[return-value]

    return app


def wsgi() -> TipboxFlask:
    """Process-boundary factory for a WSGI server: ``gunicorn 'journalist_ui:wsgi()'``.

    Reads the environment (``TIPBOX_*``); prefer ``tipbox serve journalist``.
    """
    return create_app(Config.from_env())
