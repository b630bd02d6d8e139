"""Fixtures for the scale-out tests: the live instance of the browser tests, re-exported."""

from __future__ import annotations

# Test packages import as top-level names at run time; mypy names them tests.browser.
from browser.conftest import live_instance  # type: ignore[import-not-found]

__all__ = ["live_instance"]
