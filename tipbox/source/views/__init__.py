"""The source app's pages, one blueprint per group (docs/source-app.md section 1)."""

from __future__ import annotations

from flask import Flask

from . import codename, pages, replies, submit


def register_views(app: Flask) -> None:
    """Register every blueprint of the source app on ``app``."""
    for module in (pages, codename, submit, replies):
        app.register_blueprint(module.bp)
