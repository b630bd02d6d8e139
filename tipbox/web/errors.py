"""Error pages: a short, readable page (or JSON) for every HTTP error, and nothing more.

An error response never contains a traceback, the exception's message, the path or any
other request data: those can carry source content (invariant 3) and the page is shown to
whoever sent the request. The wording is ours, per status code.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from tipbox.web.logs import describe_exception


@dataclass(frozen=True)
class ErrorText:
    """What a person reads for one kind of error."""

    title: str
    message: str


ERROR_TEXTS: dict[int, ErrorText] = {
    400: ErrorText("Bad request", "The request could not be understood. Go back and try again."),
    401: ErrorText("Not logged in", "Log in to see this page."),
    403: ErrorText("Forbidden", "You are not allowed to do this."),
    404: ErrorText("Not found", "There is nothing at this address."),
    405: ErrorText("Method not allowed", "This address does not accept that kind of request."),
    413: ErrorText(
        "Too large",
        "What you sent is larger than this site accepts. Send less at a time, or split it up.",
    ),
    429: ErrorText("Too many requests", "The site is busy. Wait a few minutes and try again."),
    500: ErrorText(
        "Something went wrong",
        "The site could not finish this request. Nothing you sent was kept. Try again later.",
    ),
    503: ErrorText("Busy", "The site is busy. Wait a few minutes and try again."),
}

CSRF_TEXT = ErrorText(
    "Form expired",
    "This form has expired or did not come from this site. Go back, reload the page, "
    "and send it again.",
)

# Headers of an HTTP exception that a client needs (405's Allow, 429's and 503's
# Retry-After); any other header the exception carries is dropped.
_KEPT_HEADERS = ("Allow", "Retry-After")


def error_text(error: HTTPException) -> ErrorText:
    """Our wording for ``error``: never the exception's own description."""
    if isinstance(error, CSRFError):
        return CSRF_TEXT
    code = error.code or 500
    known = ERROR_TEXTS.get(code)
    if known is not None:
        return known
    return ErrorText(error.name, "The request could not be completed.")


def wants_json() -> bool:
    """True when the client prefers JSON over HTML (its ``Accept`` header says so)."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def render_error(error: HTTPException) -> Response:
    """The response for ``error``: an HTML page, or JSON when the client asked for JSON."""
    code = error.code or 500
    text = error_text(error)
    if wants_json():
        response = jsonify({"error": {"code": code, "title": text.title, "message": text.message}})
    else:
        response = _html_page(code, text)
    response.status_code = code
    for name, value in error.get_headers():
        if name in _KEPT_HEADERS:
            response.headers[name] = value
    return response


def _html_page(code: int, text: ErrorText) -> Response:
    try:
        page = render_template("web/error.html", code=code, title=text.title, message=text.message)
    except Exception as exc:  # an error page must never fail into a traceback page
        current_app.logger.error("Error page failed: %s", describe_exception(exc))
        return Response(f"{code} {text.title}\n\n{text.message}\n", mimetype="text/plain")
    return Response(page, mimetype="text/html")


def install_error_handlers(app: Flask) -> None:
    """Answer every HTTP error (and every unhandled exception, as 500) with our page.

    Flask hands an unhandled exception to this handler wrapped in an
    ``InternalServerError``, after logging it with ``TipboxFlask.log_exception``.
    """

    def _handle_http(error: HTTPException) -> Response:
        return render_error(error)

    # No handler for bare ``Exception``: Flask would then skip ``log_exception``, and an
    # unexpected error must leave a (scrubbed) trace for the operator.
    app.register_error_handler(HTTPException, _handle_http)
