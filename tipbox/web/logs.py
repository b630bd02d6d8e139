"""Logging for the web apps: errors for the operator, never request data (invariant 3).

Nothing here logs a request line, an address, a user agent, a cookie, a header or a form
field, and an exception is logged as its type and code locations only: an exception's
message or a traceback's locals can quote what a source sent.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import TypeAlias

from flask import Flask
from flask.logging import default_handler

ExcInfo: TypeAlias = (
    tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Frames kept in a scrubbed exception summary, innermost last.
_MAX_FRAMES = 12


def describe_exception(exc: BaseException) -> str:
    """``Type at file:line in function <- ...``: where it failed, never what it said."""
    frames = traceback.extract_tb(exc.__traceback__)[-_MAX_FRAMES:]
    where = " <- ".join(
        f"{_short_path(frame.filename)}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"{name} at {where}" if where else name


def _short_path(filename: str) -> str:
    # From the package name on is enough, and keeps install paths out of the log.
    _, found, tail = filename.rpartition("/site-packages/")
    if found:
        return tail
    for package in ("/tipbox/", "/journalist_ui/"):
        index = filename.rfind(package)
        if index != -1:
            return filename[index + 1 :]
    return filename


class ScrubFilter(logging.Filter):
    """Replace a record's traceback with a summary that carries no message or data.

    Attached to handlers, so it also covers records from other libraries that call
    ``logger.exception``: the formatter would otherwise print the exception's message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; never drop it."""
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} [{describe_exception(record.exc_info[1])}]"
            record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_app_logging(app: Flask) -> None:
    """Make ``app`` log through the process's handlers, and quiet request logging.

    Flask's default handler is removed so that records reach the handler that
    ``configure_process_logging`` installed (or a test's capture) exactly once.
    """
    app.logger.removeHandler(default_handler)
    app.logger.setLevel(logging.INFO)
    app.logger.propagate = True
    # Werkzeug's development server logs each request line with the client address at
    # INFO; it must never run with that on, whoever starts it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def configure_process_logging(level: int = logging.INFO) -> None:
    """Send the process's log records to stderr through a ``ScrubFilter``.

    Called once at the process boundary (``tipbox.serve``); idempotent.
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_tipbox", False):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(ScrubFilter())
    handler._tipbox = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
